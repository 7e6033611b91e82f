// berthd in one CommonJS file, dist/berthd.cjs: what bin/berthd runs.
// Against the ESM tree of stripped files it saves resolving, reading and
// linking ~300 modules on every start, and CommonJS's require() of a
// built-in skips the ESM facade that enumerates every export: node:http's
// facade alone reads its WebSocket getter, which loads undici (with http2
// and tls) on every start.
//
// A dynamic import() stays lazy: esbuild turns it into an on-demand module
// init, so a lazy door's code (gRPC, the CRI and Docker servers) runs only
// when its first client connects.
//
// Each module's import.meta.dirname and import.meta.url are rewritten to its
// own path in the stripped tree of dist/ (which has src/'s layout and files,
// and holds the applier's worker script): paths relative to a module (the
// native helpers, package.json, api.proto) resolve as they do unbundled.
// No minifying: functions keep their names and each module's code follows a
// `// src/...` comment, so a stack trace reads as it is. The linked source
// map (dist/berthd.cjs.map, without sources) maps it to src/ lines under
// NODE_OPTIONS=--enable-source-maps; not by default, as Node then parses the
// map at every start (+~70 ms of CPU measured).
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');

/** The expression for a module's dirname in the stripped tree, relative to the bundle's own __dirname. */
function distDir(file) {
  const rel = path.relative(src, path.dirname(file));
  return rel ? `require("node:path").join(__dirname, ${JSON.stringify(rel)})` : '__dirname';
}

const importMetaPaths = {
  name: 'import-meta-paths',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (!args.path.startsWith(src + path.sep)) return undefined;
      const code = await readFile(args.path, 'utf8');
      if (!code.includes('import.meta')) return { contents: code, loader: 'ts' };
      const dir = distDir(args.path);
      const file = `require("node:path").join(${dir}, ${JSON.stringify(path.basename(args.path).replace(/\.ts$/, '.js'))})`;
      const contents = code
        .replace(/(new URL\(\s*['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2')
        .replaceAll('import.meta.dirname', `(${dir})`)
        .replaceAll('import.meta.url', `require("node:url").pathToFileURL(${file}).href`);
      return { contents, loader: 'ts' };
    });
  },
};

export async function bundleDaemon(outfile) {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(src, 'daemon', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    // koffi loads its native module from its own package directory.
    external: ['koffi'],
    sourcemap: 'linked',
    sourcesContent: false,
    plugins: [importMetaPaths],
    logLevel: 'warning',
  });
}
