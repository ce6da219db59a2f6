/**
 * The CLI killed with SIGKILL mid-run and resumed with --resume produces the same losses, step for step
 * and bit for bit, as an uninterrupted run; the kill leaves no partial checkpoint behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, parseMetrics } from '../../src/train/index';
import { NodeTrainFileSystem } from '../../src/train/node-files';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** Lavapipe shares 2 cores with whatever else runs; compile + train normally takes seconds. */
const CONTENDED_TIMEOUT = 300_000;
const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** One node process (no tsx wrapper process), so SIGKILL hits the trainer itself. */
function startCli(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/train.ts', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

const values = (runDir: string) =>
  parseMetrics(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).map((r) => (r.type === 'train' ? { type: r.type, step: r.step, lr: r.lr, ...r.values } : { type: r.type, step: r.step, ...r.values }));

describe('train CLI: SIGKILL and --resume', () => {
  it('resumes a killed run to the same losses as an uninterrupted run', async () => {
    const base = mkdtempSync(join(tmpdir(), 'train-kill-'));
    tempDirs.push(base);
    const killed = join(base, 'killed');
    const straight = join(base, 'straight');
    const args = ['--stage', 'ecg', '--steps', '10', '--batch', '4', '--seed', '3', '--val-every', '5', '--checkpoint-every', '2', '--quiet'];

    // The uninterrupted reference and the run to be killed start together (they share the CPU, not state).
    const reference = startCli([...args, '--out', straight]);
    const victim = startCli([...args, '--out', killed]);
    const lastCheckpoint = join(killed, 'checkpoints', 'last.safetensors');
    while (!existsSync(lastCheckpoint) && victim.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    victim.child.kill('SIGKILL');
    const killedExit = await victim.done;
    expect(killedExit.signal, `the run finished before it could be killed: ${killedExit.stderr}`).toBe('SIGKILL');

    // Every checkpoint file that is not a temporary is complete and consistent.
    const fs = new NodeTrainFileSystem();
    const names = readdirSync(join(killed, 'checkpoints'));
    for (const name of names.filter((n) => n.endsWith('.safetensors'))) {
      const checkpoint = await loadCheckpoint(fs, killed, name.replace('.safetensors', '') as 'last' | 'best');
      expect(checkpoint.tensors.size).toBeGreaterThan(0);
    }
    expect(names.filter((n) => !n.includes('.tmp-') && !/^(last|best)\.(json|safetensors)$/.test(n))).toEqual([]);
    const stoppedAt = (await loadCheckpoint(fs, killed, 'last')).meta.step;
    expect(stoppedAt).toBeGreaterThanOrEqual(2);
    expect(stoppedAt).toBeLessThan(10);

    const resumed = await startCli(['--resume', killed, '--quiet']).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    const straightExit = await reference.done;
    expect(straightExit.code, straightExit.stderr).toBe(0);

    expect(readdirSync(join(killed, 'checkpoints')).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const expected = values(straight);
    expect(expected.filter((r) => r.type === 'train')).toHaveLength(10);
    expect(values(killed)).toEqual(expected);
  }, CONTENDED_TIMEOUT);

  it('an unknown stage and a flow run without its inputs are usage errors', async () => {
    const unknown = await startCli(['--stage', 'foo']).done;
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown stage 'foo' \(known: ecg, vae, flow\)/);
    const flow = await startCli(['--stage', 'flow', '--quiet']).done;
    expect(flow.code).toBe(2);
    expect(flow.stderr).toMatch(/--vae-run/);
  }, CONTENDED_TIMEOUT);
});
