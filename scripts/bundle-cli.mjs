// The CLI bundled into one CommonJS file: what bin/berth runs. A command line
// pays Node's start-up on every invocation: one file skips resolving and
// reading a module per import, and CommonJS skips the ESM loader's set-up.
// Every command stays lazily initialised inside the bundle (esbuild turns each
// dynamic import into an on-demand module init), so a command still runs only
// the code it needs. No minifying: stack traces stay readable.
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

export async function bundleCli(outfile) {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(root, 'src', 'cli', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    logLevel: 'warning',
  });
}
