/**
 * Runs conformance tables (tests/conformance/harness.ts) on this runtime's WebGPU: Dawn under Node
 * (`tsx scripts/conformance.ts`), wgpu/Naga under Deno (`deno run -A --sloppy-imports scripts/conformance.ts`).
 * Arguments: table modules (any module exporting `conformanceCases`; default the kernel, operand-view and device tables) and
 * `--filter text` and `--gpu-kernels` (the variants for real GPUs, on any adapter). One line per case, closing with `N passed, N failed`; exits non-zero on any failure.
 */
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { Engine } from '../src/engine/engine';
import { casesOf, runConformance, type ConformanceCase } from '../tests/conformance/harness';

const args = process.argv.slice(2);
// --gpu-kernels: pick the kernel variants meant for real GPUs (shared-memory tiles, tree reductions, one
// element per invocation) although the adapter is a CPU one, so those shaders are compiled and checked too.
const gpuKernelsAt = args.indexOf('--gpu-kernels');
if (gpuKernelsAt >= 0) args.splice(gpuKernelsAt, 1);
const filterAt = args.indexOf('--filter');
const filter = filterAt >= 0 ? args.splice(filterAt, 2)[1] : null;
const modules = args.length > 0 ? args : ['tests/conformance/kernel-table.ts', 'tests/conformance/operand-view-table.ts', 'tests/conformance/device-table.ts'];

const cases: ConformanceCase[] = [];
for (const path of modules) cases.push(...casesOf(await import(pathToFileURL(resolve(path)).href), path));
const selected = filter ? cases.filter((c) => c.name.includes(filter)) : cases;

const versions = process.versions as Record<string, string | undefined>;
const runtime = versions.deno ? `Deno ${versions.deno} (wgpu)` : `Node ${versions.node} (Dawn)`;
const gpu = await Engine.webgpu();
const caps = gpu.caps!;
if (gpuKernelsAt >= 0) Object.assign(caps, { software: false, largeRegisterBlocks: false });
console.log(`${runtime}, adapter ${caps.adapter.description || caps.adapter.device}${gpuKernelsAt >= 0 ? ' with the GPU kernel variants' : ''}: f16 ${caps.f16}, subgroups ${caps.subgroups}, timestamp-query ${caps.timestampQuery}`);
const started = performance.now();
const report = await runConformance(selected, { gpu, cpu: Engine.cpu() }, (line) => console.log(line));
gpu.destroy();
console.log(`${selected.length} cases from ${modules.join(', ')} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
console.log(`${report.passed} passed, ${report.failed} failed${report.skipped ? `, ${report.skipped} skipped` : ''}`);
process.exit(report.failed > 0 || report.passed === 0 ? 1 : 0);
