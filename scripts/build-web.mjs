// `npm run build:web`: bundles the page (web/src/main.ts) for browsers into web/dist/ with esbuild, copies
// index.html, the stylesheet and the bundled tiny checkpoint (web/assets/) beside it, and audits the engine:
// src/engine, src/kernels, src/models, src/train and the data layer's phantom are bundled on their own for
// platform 'browser' with no externals, so any Node-only import there fails the build with its file name.
//
// Flags: --no-audit (skip the audit bundle), --quiet.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const log = (line) => quiet || console.log(line);
const web = join(root, 'web');
const dist = join(web, 'dist');

/** Everything in src/ that must run in a browser: the audit bundle imports each of these modules. */
function browserModules() {
  const dirs = ['src/engine', 'src/kernels', 'src/models', 'src/train', 'src/platform', 'src/data/phantom', 'src/data/readers', 'src/data/writers', 'src/data/preprocess'];
  // Node adapters by design: the data layer's and the trainer's file systems on node:fs.
  const nodeOnly = new Set(['src/train/node-files.ts', 'src/data/node-fs.ts']);
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const rel = `${dir}/${name}`;
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (rel.endsWith('.ts') && !rel.endsWith('.d.ts') && !nodeOnly.has(rel)) files.push(rel);
    }
  };
  dirs.forEach(walk);
  return files;
}

/**
 * Bundles every browser-facing module for platform 'browser' without externals. esbuild refuses Node
 * built-ins there, so an offender fails the build naming the importing file. Globals that exist only in
 * Node (process, Buffer, __dirname, require) do not fail a bundle; they are listed from the bundle's inputs.
 */
async function auditBrowserSafety() {
  const modules = browserModules();
  const entry = modules.map((m, i) => `export * as m${i} from './${m.replace(/\.ts$/, '')}';`).join('\n');
  const result = await build({
    stdin: { contents: entry, resolveDir: root, sourcefile: 'browser-audit.ts', loader: 'ts' },
    bundle: true, write: false, platform: 'browser', format: 'esm', target: 'es2022', metafile: true, logLevel: 'silent',
  });
  const offenders = [];
  const { readFileSync } = await import('node:fs');
  for (const input of Object.keys(result.metafile.inputs)) {
    if (!input.startsWith('src/')) continue;
    const lines = readFileSync(join(root, input), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '');
      // A guarded probe (`typeof process !== 'undefined'`) is how browser-safe code detects Node: allowed.
      const m = /\b(process\.(?:env|platform|argv|exit|cwd|stdout|stderr)|Buffer\.|__dirname|__filename|require\()/.exec(code);
      if (m) offenders.push(`${input}:${i + 1}: ${m[1]}`);
    });
  }
  return { modules: modules.length, inputs: Object.keys(result.metafile.inputs).length, offenders };
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const started = performance.now();
await build({
  entryPoints: { app: join(web, 'src/main.ts') },
  outdir: dist,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  minify: false,
  // The engine imports Dawn's addon in Node through a variable specifier; mark it anyway so a future
  // literal import cannot drag a .node binary into the page.
  external: ['webgpu'],
  logLevel: quiet ? 'error' : 'warning',
});
for (const file of ['index.html', 'style.css']) cpSync(join(web, file), join(dist, file));
if (existsSync(join(web, 'assets'))) cpSync(join(web, 'assets'), join(dist, 'assets'), { recursive: true });
log(`web/dist: app.js, index.html, style.css, assets/ (${((performance.now() - started) / 1000).toFixed(1)} s)`);

if (!args.includes('--no-audit')) {
  const audit = await auditBrowserSafety();
  // device.ts reaches process.env/platform only on its Node path (after isNode()); known and allowed.
  const known = audit.offenders.filter((o) => o.startsWith('src/engine/device.ts:'));
  const unexpected = audit.offenders.filter((o) => !known.includes(o));
  if (unexpected.length) {
    console.error(`browser audit: Node-only APIs in browser-facing modules:\n  ${unexpected.join('\n  ')}`);
    process.exit(1);
  }
  log(`browser audit: ${audit.modules} modules (${audit.inputs} files) bundle for platform 'browser' with no Node built-ins`);
  if (known.length) log(`  Node-only globals on guarded Node paths (allowed): ${known.join(', ')}`);
}
log(`open: npm run serve  (then the printed URL)   [${relative(root, dist)}]`);
