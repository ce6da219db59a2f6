// `npm run test:browser`: the page in headless Chromium (Debian's /usr/bin/chromium, WebGPU on its
// SwiftShader) against the same code in Node (Dawn):
//   (a) generate: phantom ECG → cine with the bundled tiny chain, clip compared with Node's for the same seed;
//   (b) train: a few steps of stage flow (tiny) in the page, losses compared with Node's for the same seed;
//   (c) screenshot: not blank (pixel variance of the PNG and of the cine canvas);
//   (d) ECG files (CSV, WFDB pair, NPY) through the file input: read as the data layer reads them in Node;
//   (e) with navigator.gpu hidden, the page shows its no-WebGPU message.
// Prints one line per check and 'N passed, N failed' last; exits 1 on any failure.
//
// Flags: --screenshot FILE (also save the page there, e.g. docs/img/web.png), --no-build, --keep (keep the
// temporary directory), --headed-debug (log the page's console).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flagValue = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The same inputs on both sides.
const GENERATE = { phantomSeed: 42, phantomIndex: 3, steps: 10, guidance: 2, alpha: 0.6, seed: 42 };
const FLOW = { steps: 3, seed: 7 };
// Two fp32 implementations (SwiftShader vs lavapipe) round differently; these bound how far apart they may be.
const CLIP_MAX_ABS = 2e-3;
const CLIP_MEAN_ABS = 2e-4;
const LOSS_REL = 2e-3;

const results = [];
const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
function check(name, ok, detail) {
  results.push({ name, ok });
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` - ${detail}` : ''}  [${seconds()} s]`);
}
function finish(code) {
  const passed = results.filter((r) => r.ok).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
  process.exit(code ?? (passed === results.length && results.length ? 0 : 1));
}

/** Stops the run after a failed prerequisite; the finally block still closes the browser and the server. */
class Abort extends Error {}
const abort = () => {
  throw new Abort();
};

const temp = mkdtempSync(join(tmpdir(), 'ecgflow-browser-'));
let server = null;
let context = null;
try {
  if (!existsSync(CHROMIUM)) {
    check('chromium', false, `${CHROMIUM} not found (Debian: apt-get install chromium; or set CHROMIUM_PATH)`);
    abort();
  }
  if (!argv.includes('--no-build')) {
    const build = spawnSync(process.execPath, [join(root, 'scripts/build-web.mjs'), '--quiet'], { stdio: 'inherit', cwd: root });
    if (build.status !== 0) {
      check('build:web', false, `exit ${build.status}`);
      abort();
    }
  }
  if (!existsSync(join(root, 'web/dist/assets/tiny-chain/manifest.json'))) {
    check('bundled chain', false, 'web/assets/tiny-chain/manifest.json missing (npx tsx web/tools/make-tiny-chain.ts)');
    abort();
  }

  // Node first, alone: lavapipe and SwiftShader would otherwise fight over the same cores.
  const referenceFile = join(temp, 'node-reference.json');
  const filesDir = join(temp, 'ecg-files');
  const reference = spawnSync('npx', ['tsx', 'tests/browser/node-reference.ts', '--out', referenceFile, '--files-dir', filesDir,
    '--phantom-seed', GENERATE.phantomSeed, '--phantom-index', GENERATE.phantomIndex, '--steps', GENERATE.steps, '--guidance', GENERATE.guidance,
    '--alpha', GENERATE.alpha, '--seed', GENERATE.seed, '--flow-steps', FLOW.steps, '--flow-seed', FLOW.seed].map(String), { cwd: root, encoding: 'utf8' });
  if (reference.status !== 0) {
    check('node reference', false, (reference.stderr || '').trim().split('\n').slice(-5).join(' | '));
    abort();
  }
  const node = JSON.parse(readFileSync(referenceFile, 'utf8'));
  check('node: stepwise generation equals FlowPipeline.generate bitwise', node.generate.stepwiseEqualsPipeline, `adapter ${node.adapter?.architecture || node.adapter?.description || '?'}`);

  const served = await startServer({ port: 0, dir: join(root, 'web/dist'), quiet: true });
  server = served.server;
  const args = ['--enable-unsafe-webgpu', '--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic'];
  // A fresh profile per run: no state from earlier runs, nothing written to the user's profile.
  context = await chromium.launchPersistentContext(join(temp, 'profile'), { executablePath: CHROMIUM, args, headless: true, viewport: { width: 1200, height: 1050 } });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => argv.includes('--headed-debug') && console.log(`  page: ${m.text()}`));
  await page.goto(served.url);
  await page.waitForFunction(() => ['ready', 'no-webgpu', 'error'].includes(document.body.dataset.status), null, { timeout: 120_000 });
  const status = await page.evaluate(() => document.body.dataset.status);
  const device = await page.evaluate(() => document.getElementById('device').textContent);
  check('page: WebGPU device', status === 'ready', `${status}; ${device}`);
  if (status !== 'ready') abort();

  // (a) generate through the UI, as a user would.
  await page.check('input[name=ecg-source][value=phantom]');
  await page.check('input[name=chain-source][value=bundled]');
  for (const [id, value] of [['phantom-seed', GENERATE.phantomSeed], ['phantom-index', GENERATE.phantomIndex], ['steps', GENERATE.steps], ['guidance', GENERATE.guidance], ['alpha', GENERATE.alpha], ['seed', GENERATE.seed]]) {
    await page.fill(`#${id}`, String(value));
  }
  await page.selectOption('#method', 'euler');
  const progressSeen = new Set();
  const poll = setInterval(() => page.evaluate(() => document.getElementById('gen-status').textContent).then((t) => progressSeen.add(t)).catch(() => undefined), 150);
  await page.click('#generate');
  await page.waitForFunction(() => ['generated', 'error'].includes(document.body.dataset.status), null, { timeout: 240_000 });
  clearInterval(poll);
  const generated = await page.evaluate(() => window.ecgflow.last());
  if (!generated) {
    check('(a) generate in the page', false, await page.evaluate(() => document.getElementById('gen-status').textContent));
  } else {
    const a = generated.clip;
    const b = node.generate.clip;
    let maxAbs = 0;
    let sumAbs = 0;
    for (let i = 0; i < b.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      maxAbs = Math.max(maxAbs, d);
      sumAbs += d;
    }
    const meanAbs = sumAbs / b.length;
    const sameShape = a.length === b.length && generated.frames === node.generate.frames && generated.height === node.generate.height;
    check('(a) generated clip matches Node', sameShape && maxAbs <= CLIP_MAX_ABS && meanAbs <= CLIP_MEAN_ABS,
      `${generated.frames}x${generated.height}x${generated.width}, max |Δ| ${maxAbs.toExponential(2)} (≤ ${CLIP_MAX_ABS}), mean |Δ| ${meanAbs.toExponential(2)}; ` +
      `page ${(generated.seconds.encode + generated.seconds.sample + generated.seconds.decode).toFixed(1)} s`);
    check('(a) cycle window matches Node', generated.windowSamples.join() === node.generate.windowSamples.join(), `page ${generated.windowSamples.join('-')}, node ${node.generate.windowSamples.join('-')}`);
    const stepsShown = [...progressSeen].filter((t) => /sampling: step \d+\/\d+/.test(t ?? ''));
    check('(a) progress per sampling step shown', stepsShown.length >= 2, `${stepsShown.length} distinct step messages seen`);
  }

  // (b) stage flow, a few steps, in the page through the trainer.
  const probe = await page.evaluate(({ steps, seed }) => window.ecgflow.flowProbe(steps, seed), FLOW).catch((e) => ({ error: e.message }));
  if (probe.error) check('(b) flow training in the page', false, probe.error);
  else {
    const rel = probe.loss.map((v, i) => Math.abs(v - node.flow.loss[i]) / Math.max(Math.abs(node.flow.loss[i]), 1e-12));
    const ok = probe.loss.length === FLOW.steps && node.flow.loss.length === FLOW.steps && rel.every((r) => r <= LOSS_REL);
    check('(b) flow losses match Node', ok, `page ${probe.loss.map((v) => v.toFixed(6)).join(', ')}; node ${node.flow.loss.map((v) => v.toFixed(6)).join(', ')}; max rel ${Math.max(...rel).toExponential(2)} (≤ ${LOSS_REL})`);
  }

  // (c) the page as a picture: not blank, and the cine canvas shows an image.
  await page.evaluate(() => window.scrollTo(0, 0));
  // Kept after the run (web/dist is git-ignored) so a failure can be looked at.
  const shot = join(root, 'web/dist/test-screenshot.png');
  await page.screenshot({ path: shot });
  const png = PNG.sync.read(readFileSync(shot));
  let mean = 0;
  let sq = 0;
  const n = png.width * png.height;
  for (let i = 0; i < n; i++) {
    const g = (png.data[4 * i] + png.data[4 * i + 1] + png.data[4 * i + 2]) / 3;
    mean += g;
    sq += g * g;
  }
  mean /= n;
  const variance = sq / n - mean * mean;
  const cineVariance = await page.evaluate(() => {
    const c = document.getElementById('cine-canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let m = 0;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) {
      m += d[i];
      s += d[i] * d[i];
    }
    const k = d.length / 4;
    return s / k - (m / k) ** 2;
  });
  check('(c) screenshot not blank', variance > 100 && cineVariance > 10, `page variance ${variance.toFixed(0)}, cine canvas variance ${cineVariance.toFixed(0)}; ${shot}`);
  const keepShot = flagValue('--screenshot');
  if (keepShot) {
    mkdirSync(dirname(keepShot), { recursive: true });
    copyFileSync(shot, keepShot);
  }
  // (d) ECG files through the file input, read in the page as the data layer reads them in Node.
  for (const [kind, expected] of Object.entries(node.ecgFiles)) {
    // NPY stores no sampling rate: the page's rate field supplies it (and must be empty for the others).
    await page.fill('#ecg-fs', kind === 'npy' ? '500' : '');
    await page.setInputFiles('#ecg-file', expected.files);
    // Each kind has its own file name, so a result left from the previous kind is never mistaken for this one.
    const want = kind === 'wfdb' ? 'rec' : `phantom-${kind}`;
    const loaded = await page.waitForFunction((name) => {
      const l = window.ecgflow.loadedEcg();
      return l && l.name === name && l.length > 0 ? l : null;
    }, want, { timeout: 30_000 }).then((h) => h.jsonValue()).catch(() => null);
    const f = expected.fingerprint;
    const close = (x, y) => Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(y));
    const ok = !!loaded && loaded.length === f.length && close(loaded.sum, f.sum) && close(loaded.absSum, f.absSum);
    check(`(d) ${kind} file loads as in Node`, ok, loaded ? `sum ${loaded.sum.toFixed(4)} vs ${f.sum.toFixed(4)}, |sum| ${loaded.absSum.toFixed(3)} vs ${f.absSum.toFixed(3)}` : 'not loaded');
    await page.setInputFiles('#ecg-file', []);
  }

  // (e) a browser without WebGPU: the page must say so instead of failing somewhere later.
  const bare = await context.newPage();
  await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
  await bare.goto(served.url);
  await bare.waitForFunction(() => document.body.dataset.status !== 'loading', null, { timeout: 60_000 });
  const noGpu = await bare.evaluate(() => ({ status: document.body.dataset.status, banner: document.getElementById('no-webgpu').hidden ? '' : document.getElementById('no-webgpu').textContent }));
  check('(e) without WebGPU: clear message', noGpu.status === 'no-webgpu' && /WebGPU is not available/.test(noGpu.banner), `${noGpu.status}: ${noGpu.banner.slice(0, 60)}…`);
  await bare.close();

  check('page: no uncaught errors', pageErrors.length === 0, pageErrors.slice(0, 3).join(' | '));
} catch (e) {
  if (!(e instanceof Abort)) check('browser test', false, e instanceof Error ? e.message.split('\n')[0] : String(e));
} finally {
  await context?.close().catch(() => undefined);
  server?.close();
  if (!argv.includes('--keep')) rmSync(temp, { recursive: true, force: true });
  else console.log(`kept ${temp}`);
}
finish();
