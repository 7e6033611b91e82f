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
import { readFile, writeFile } from 'node:fs/promises';
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
  await escapeNonAscii(outfile);
}

/**
 * V8 holds a script's source in its heap for as long as its functions may
 * be compiled, and one character above Latin-1 anywhere in it makes the
 * whole source two bytes a character: the bundle's 2.2 MB took 4.5 MB of
 * berthd's heap for the `μs` of one duration regex. esbuild escapes
 * non-ASCII characters in strings but not in regular expression literals,
 * so the rest are escaped here; `\uXXXX` means the same code unit in a
 * regex, string, template, identifier or comment. The source map's columns
 * shift on those few lines only.
 */
async function escapeNonAscii(file) {
  const code = await readFile(file, 'utf8');
  const ascii = code.replace(/[^\x00-\x7f]/g, (c, at) => {
    // After a backslash the escape would read as an escaped backslash and text.
    if (code[at - 1] === '\\') throw new Error(`${file}: a non-ASCII character after a backslash at offset ${at}`);
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
  if (ascii !== code) await writeFile(file, ascii);
}
