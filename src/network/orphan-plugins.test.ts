import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { rootCtx } from '../core/context.ts';
import { findPluginProcesses, pluginOwnerVar, stopOrphanPlugins } from './orphan-plugins.ts';

describe('plugins a previous daemon left running', () => {
  it('are found by their owner mark, children included, killed and waited for; another owner\'s stay', async () => {
    const owner = `/tmp/orphan-test-${process.pid}/cni`;
    // A "plugin" that has started a child of its own, as bridge runs host-local.
    const mine = spawn('/bin/sh', ['-c', 'sleep 600 & echo $!; wait'], { env: { ...process.env, [pluginOwnerVar]: owner }, stdio: ['ignore', 'pipe', 'ignore'] });
    const [line] = (await once(mine.stdout!, 'data')) as [Buffer];
    const child = Number(String(line).trim());
    const other = spawn('/bin/sh', ['-c', 'sleep 600'], { env: { ...process.env, [pluginOwnerVar]: `${owner}-other` }, stdio: 'ignore' });
    try {
      assert.deepEqual((await findPluginProcesses(owner)).map((p) => p.pid).sort(), [mine.pid, child].sort());
      const exited = once(mine, 'exit');
      assert.equal(await stopOrphanPlugins(rootCtx(), owner, 10_000), 2);
      await exited;
      assert.deepEqual(await findPluginProcesses(owner), []);
      assert.equal(other.exitCode, null);
      assert.equal(await stopOrphanPlugins(rootCtx(), owner, 10_000), 0);
    } finally {
      other.kill('SIGKILL');
      mine.kill('SIGKILL');
    }
  });
});
