// `npm run serve [-- --port N] [--dir web/dist] [--host 127.0.0.1]`: a small static file server for the page.
// Serves on 127.0.0.1 by default: a loopback origin is a secure context, which WebGPU requires.
// Also importable: startServer({ port, dir, host }) → { server, url } (the browser test uses it, port 0 = any).
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

export const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
  '.npy': 'application/octet-stream',
  '.dat': 'application/octet-stream',
  '.hea': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.gz': 'application/gzip',
};

function parseArgs(argv) {
  const options = { port: 8080, dir: join(root, 'web', 'dist'), host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--port' || flag === '-p') options.port = Number(value());
    else if (flag === '--dir') options.dir = resolve(value());
    else if (flag === '--host') options.host = value();
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: npm run serve -- [--port 8080] [--dir web/dist] [--host 127.0.0.1]');
      process.exit(0);
    } else throw new Error(`unknown argument '${argv[i]}'`);
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new Error(`--port must be 0-65535`);
  return options;
}

export function startServer({ port = 8080, dir = join(root, 'web', 'dist'), host = '127.0.0.1', quiet = false } = {}) {
  const base = resolve(dir);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let path;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400).end('bad path');
      return;
    }
    if (path.endsWith('/')) path += 'index.html';
    const file = normalize(join(base, path));
    // Refuse anything that escapes the served directory (../ in the path).
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: ${path}`);
      return;
    }
    const headers = {
      'content-type': MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      // A rebuilt bundle must be picked up on reload.
      'cache-control': 'no-cache',
    };
    if (req.method === 'HEAD') {
      res.writeHead(200, headers).end();
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
    if (!quiet) res.on('finish', () => process.stdout.write(`${req.method} ${path} 200\n`));
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolvePromise({ server, url: `http://${host}:${address.port}/` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const options = parseArgs(process.argv.slice(2));
    if (!existsSync(join(options.dir, 'index.html'))) console.warn(`warning: ${options.dir}/index.html not found; run npm run build:web first`);
    const { url } = await startServer(options);
    console.log(`serving ${options.dir} at ${url}  (Ctrl-C to stop)`);
  } catch (e) {
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
}
