import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RestartPolicy } from '../../core/containers.ts';
import { restartDelay, shouldRestart, startOnDaemonStart } from './restart-policy.ts';

const no: RestartPolicy = { name: 'no' };
const always: RestartPolicy = { name: 'always' };
const unlessStopped: RestartPolicy = { name: 'unless-stopped' };
const onFailure: RestartPolicy = { name: 'on-failure' };
const onFailure3: RestartPolicy = { name: 'on-failure', maximumRetryCount: 3 };
const exit = (exitCode: number, more: { manuallyStopped?: boolean; restartCount?: number } = {}) => ({ exitCode, manuallyStopped: false, restartCount: 0, ...more });

describe('shouldRestart', () => {
  it('never restarts without a policy or with "no"', () => {
    assert.equal(shouldRestart(undefined, exit(1)), false);
    assert.equal(shouldRestart(no, exit(1)), false);
  });

  it('always and unless-stopped restart on any exit', () => {
    for (const p of [always, unlessStopped]) {
      assert.equal(shouldRestart(p, exit(0)), true);
      assert.equal(shouldRestart(p, exit(137, { restartCount: 1000 })), true);
    }
  });

  it('on-failure restarts only a non-zero exit, up to the maximum', () => {
    assert.equal(shouldRestart(onFailure, exit(0)), false);
    assert.equal(shouldRestart(onFailure, exit(1, { restartCount: 1000 })), true);
    assert.equal(shouldRestart(onFailure3, exit(1, { restartCount: 2 })), true);
    assert.equal(shouldRestart(onFailure3, exit(1, { restartCount: 3 })), false);
    assert.equal(shouldRestart({ name: 'on-failure', maximumRetryCount: 0 }, exit(2, { restartCount: 50 })), true);
  });

  it('a manual stop never restarts', () => {
    for (const p of [always, unlessStopped, onFailure]) assert.equal(shouldRestart(p, exit(137, { manuallyStopped: true })), false);
  });
});

describe('startOnDaemonStart', () => {
  it('always starts, even after a manual stop', () => {
    assert.equal(startOnDaemonStart(always, false, false), true);
    assert.equal(startOnDaemonStart(always, false, true), true);
  });

  it('unless-stopped starts unless the user stopped it', () => {
    assert.equal(startOnDaemonStart(unlessStopped, true, false), true);
    assert.equal(startOnDaemonStart(unlessStopped, false, true), false);
  });

  it('on-failure starts only what was running, no and none never', () => {
    assert.equal(startOnDaemonStart(onFailure, true, false), true);
    assert.equal(startOnDaemonStart(onFailure, false, false), false);
    assert.equal(startOnDaemonStart(onFailure, true, true), false);
    assert.equal(startOnDaemonStart(no, true, false), false);
    assert.equal(startOnDaemonStart(undefined, true, false), false);
  });
});

describe('restartDelay', () => {
  it('starts at 100 ms and doubles up to a minute', () => {
    let d = restartDelay(0, 0);
    assert.equal(d, 100);
    const seen = [d];
    for (let i = 0; i < 12; i++) seen.push((d = restartDelay(d, 500)));
    assert.deepEqual(seen.slice(0, 5), [100, 200, 400, 800, 1600]);
    assert.equal(seen.at(-1), 60_000);
    assert.equal(restartDelay(40_000, 500), 60_000);
  });

  it('resets after a run of ten seconds', () => {
    assert.equal(restartDelay(60_000, 10_000), 100);
    assert.equal(restartDelay(60_000, 9_999), 60_000);
  });
});
