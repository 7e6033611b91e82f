import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = import.meta.dirname;
const moduleUrl = new URL('./v8-flags.ts', import.meta.url).href;

/** The V8 flags bin/berthd starts Node with. */
async function berthdFlags(): Promise<string[]> {
  const script = await readFile(path.join(here, '..', '..', 'bin', 'berthd'), 'utf8');
  const line = /^gc="([^"]*)"$/m.exec(script);
  assert.ok(line, 'bin/berthd sets its V8 flags in one gc="..." line');
  return line[1].split(/\s+/).filter(Boolean);
}

/**
 * What a Node run with `flags` sees: V8's code cache tag (it hashes the
 * flags in force, as the check of Node's built-in code cache does) after
 * berthd's module loaded and once berthd is ready; and how Date names the
 * zone (ICU or the C library).
 */
async function probe(flags: string[]): Promise<Record<string, string | number>> {
  const code = `
    import { settleV8Flags } from ${JSON.stringify(moduleUrl)};
    import { cachedDataVersionTag } from 'node:v8';
    const out = { start: cachedDataVersionTag(), zone: new Date(0).toString(), gc: typeof globalThis.gc };
    settleV8Flags();
    out.serving = cachedDataVersionTag();
    console.log(JSON.stringify(out));`;
  const { stdout } = await run(process.execPath, [...flags, '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', code], { env: { ...process.env, TZ: 'UTC' } });
  return JSON.parse(stdout);
}

async function pristineTag(): Promise<number> {
  const { stdout } = await run(process.execPath, ['-p', "require('node:v8').cachedDataVersionTag()"]);
  return Number(stdout);
}

it("starts under Node's own flag hash with bin/berthd's flags and serves under its own", async () => {
  const [pristine, got] = await Promise.all([pristineTag(), berthdFlags().then(probe)]);
  assert.equal(got.start, pristine, "bin/berthd's flags are all put back: Node's built-in code cache is accepted while berthd starts");
  assert.notEqual(got.serving, pristine, 'the serving flags are set once berthd is ready');
  // What the start flags did when the isolate was made stays: the C library names the zone, and gc() exists.
  assert.match(String(got.zone), /\(UTC\)$/);
  assert.equal(got.gc, 'function');
});

it("leaves a Node started without bin/berthd's flags (tests, tools) as it is", async () => {
  const [pristine, got] = await Promise.all([pristineTag(), probe([])]);
  assert.deepEqual([got.start, got.serving], [pristine, pristine]);
  assert.match(String(got.zone), /\(Coordinated Universal Time\)$/);
});
