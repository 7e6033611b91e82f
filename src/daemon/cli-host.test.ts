import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { it } from 'node:test';

/**
 * berthd survives an exception that escapes a hosted command, and only
 * that: run in a child Node, since the isolation is a process-wide handler.
 * (The CLI host end to end is in test/integration/cli-host.test.ts.)
 */
it('ends a hosted command whose code throws or rejects, and still exits on any other uncaught exception', () => {
  const host = pathToFileURL(path.join(import.meta.dirname, 'cli-host.ts')).href;
  const logMod = pathToFileURL(path.join(import.meta.dirname, '../core/log.ts')).href;
  const script = `
    import { asHostedCommand, isolateHostedFailures } from ${JSON.stringify(host)};
    import { createLogger } from ${JSON.stringify(logMod)};
    isolateHostedFailures(createLogger({ level: 'error' }));
    const failures = [];
    asHostedCommand((err) => failures.push(err.message), () => {
      setTimeout(() => { throw new Error('thrown in a callback'); }, 5);
      (async () => { await new Promise((r) => setTimeout(r, 10)); throw new Error('rejected'); })();
    });
    setTimeout(() => {
      process.stdout.write(JSON.stringify(failures.sort()) + '\\n');
      setTimeout(() => { throw new Error('a fault of berthd itself'); }, 0);
    }, 200);
  `;
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.stdout.trim(), JSON.stringify(['rejected', 'thrown in a callback']), r.stderr);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /a fault of berthd itself/);
});
