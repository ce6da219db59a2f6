// Bundles the library (platform-neutral ESM) and the Node entry points into dist/ with esbuild.
import { build } from 'esbuild';

const common = { bundle: true, format: 'esm', sourcemap: true, target: 'es2022', logLevel: 'info' };
await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.js', platform: 'neutral', external: ['webgpu'] });
await build({
  ...common,
  entryPoints: { bench: 'bench/run.ts' },
  outdir: 'dist',
  platform: 'node',
  external: ['webgpu', '@tensorflow/*'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
