// Writes dist/: the TypeScript sources with their types stripped (Node's own
// stripper, which keeps every line and column so stack traces still point at
// src/: what the applier's worker threads run, and berthd's fallback);
// dist/berthd.cjs, berthd in one file for bin/berthd (bundle-daemon.mjs);
// dist/berth.cjs, the CLI in one file for bin/berth (bundle-cli.mjs); and
// dist/api/cri/api.json, the CRI's api.proto pre-parsed, so the CRI door's
// first connection does not run the .proto parser. tsc only type-checks;
// esbuild only bundles (Node 24 is its target: no transforms beyond the
// types).
import { readdir, readFile, writeFile, mkdir, rm, stat } from 'node:fs/promises';
import { createRequire, stripTypeScriptTypes } from 'node:module';
import path from 'node:path';
import { bundleCli } from './bundle-cli.mjs';
import { bundleDaemon } from './bundle-daemon.mjs';

const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');
const out = path.join(root, 'dist');
// Relative imports, and `new URL('./x.ts', import.meta.url)` (a worker's script), name the built .js.
const specifier = /((?:from|import|new URL)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g;

async function* walk(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) yield p;
  }
}

await rm(out, { recursive: true, force: true });
let n = 0;
for await (const file of walk(src)) {
  const rel = path.relative(src, file);
  const code = await readFile(file, 'utf8');
  const js = stripTypeScriptTypes(code, { mode: 'strip' }).replace(specifier, '$1$2.js$3');
  const target = path.join(out, rel.replace(/\.ts$/, '.js'));
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, js);
  n++;
}
await writeFile(path.join(out, 'package.json'), JSON.stringify({ type: 'module' }) + '\n');
// Field names as written in the .proto: the CRI server's messages use them (proto-loader's keepCase).
const protobuf = createRequire(import.meta.url)('protobufjs');
const criProto = new protobuf.Root().loadSync(path.join(src, 'api', 'cri', 'api.proto'), { keepCase: true });
await writeFile(path.join(out, 'api', 'cri', 'api.json'), JSON.stringify(criProto.toJSON()));
await bundleDaemon(path.join(out, 'berthd.cjs'));
await bundleCli(path.join(out, 'berth.cjs'));
const { mtime } = await stat(out);
console.log(`build: ${n} modules stripped into dist/, berthd bundled into dist/berthd.cjs, the CLI into dist/berth.cjs (${mtime.toISOString()})`);
