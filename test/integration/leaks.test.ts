import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { cgroupConfig, cycle, cycleKinds, fdTargets, formatProbe, growth, probe, removeCgroupParent, uniqueCgroupParent } from '../helpers/leak-probe.ts';

/**
 * Issue 3: nothing a container had (mounts, cgroups, netns, veths, iptables
 * rules, files under root and state, monitors, berthd's fds) outlives its
 * removal. Every kind of container life is repeated N times and the
 * machine's state compared with what it was before. RSS is printed only.
 */
const N = Number(process.env.BERTH_LEAK_CYCLES ?? 20);
// Node's own lazily opened handles (a worker, an epoll, a pipe) may appear once.
const fdTolerance = 4;

describe('nothing leaks over run/rm cycles', { timeout: 900_000 }, () => {
  let e: Engine;
  const parent = uniqueCgroupParent();
  before(async () => {
    e = await startEngine({ extraConfig: cgroupConfig(parent) });
    // One of each first, so what is created once and kept (the bridge, its
    // first rules, lazily opened handles) is in the baseline.
    for (const kind of cycleKinds) await cycle(e, kind);
  });

  it('the probe sees what a running container holds', async () => {
    const idle = await probe(e, parent);
    const r = await e.d.cli(['run', '-d', '-p', '127.0.0.1::80', e.image, 'sleep', '600']);
    assert.equal(r.code, 0, r.stderr);
    const busy = await probe(e, parent);
    assert.equal((await e.d.cli(['rm', '-f', r.stdout.trim()])).code, 0);
    const grew = growth(idle, busy).map((g) => g.split(' ')[0]);
    for (const k of ['mounts', 'cgroups', 'netns', 'veths', 'iptables', 'monitors', 'state/tasks', 'state/containers']) {
      assert.ok(grew.includes(k), `${k} grew with a running container (${grew.join(', ')})`);
    }
  });
  after(async () => {
    await e?.stop();
    await removeCgroupParent(parent);
  });

  for (const kind of cycleKinds) {
    it(`${kind}: ${N} cycles leave nothing behind`, async () => {
      const before = await probe(e, parent);
      const fdsBefore = await fdTargets(e.d.proc.pid!);
      for (let i = 0; i < N; i++) await cycle(e, kind);
      const afterP = await probe(e, parent);
      console.log(`# ${kind} before: ${formatProbe(before)}`);
      console.log(`# ${kind} after:  ${formatProbe(afterP)}`);
      assert.deepEqual(growth(before, afterP), [], `state grew after ${N} ${kind} cycles`);
      if (afterP.fds > before.fds + fdTolerance) {
        const now = await fdTargets(e.d.proc.pid!);
        const extra = now.filter((t) => { const i = fdsBefore.indexOf(t); if (i >= 0) { fdsBefore.splice(i, 1); return false; } return true; });
        assert.fail(`berthd fds ${before.fds} -> ${afterP.fds}: ${extra.join(', ')}`);
      }
      assert.equal(afterP.counts.monitors, 0);
      assert.equal(afterP.counts.cgroups, 0, 'no container cgroup left');
    });
  }

  it(`${N} execs in a running container leave nothing behind once they exit`, async () => {
    const r = await e.d.cli(['run', '-d', '--network', 'none', e.image, 'sleep', '600']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    try {
      const ex = await e.d.cli(['exec', id, 'true']);
      assert.equal(ex.code, 0, ex.stderr);
      const before = await probe(e, parent);
      for (let i = 0; i < N; i++) {
        const x = await e.d.cli(['exec', id, 'sh', '-c', `exit ${i % 3}`]);
        assert.equal(x.code, i % 3, x.stderr);
      }
      // Execs that cannot start leave nothing either.
      for (let i = 0; i < 3; i++) assert.equal((await e.d.cli(['exec', id, 'no-such-command'])).code, 127);
      // An exec's task dir goes once its monitor has reported the exit, which may be just after the exec command returned.
      let afterP = await probe(e, parent);
      for (let i = 0; i < 50 && growth(before, afterP).length; i++) {
        await new Promise((res) => setTimeout(res, 100));
        afterP = await probe(e, parent);
      }
      console.log(`# exec before: ${formatProbe(before)}`);
      console.log(`# exec after:  ${formatProbe(afterP)}`);
      assert.deepEqual(growth(before, afterP), [], `state grew after ${N} execs`);
      const ins = await e.d.cli(['inspect', id]);
      assert.ok(ins.stdout.length < 20_000, `inspect output stays small (${ins.stdout.length} bytes)`);
    } finally {
      await e.d.cli(['rm', '-f', id]);
    }
  });

  it('clients that go away mid-stream (logs -f, wait, events, stats) leave no fd or watcher behind', async () => {
    const r = await e.d.cli(['run', '-d', '--network', 'none', e.image, 'sh', '-c', 'while true; do echo tick; sleep 0.2; done']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    try {
      const streams = [['logs', '-f', id], ['wait', id], ['events'], ['stats', id]];
      for (const args of streams) await e.d.cli(args, { timeoutMs: 1500 });
      const before = await probe(e, parent);
      const n = Math.max(2, Math.floor(N / 3));
      for (let i = 0; i < n; i++) await Promise.all(streams.map((args) => e.d.cli(args, { timeoutMs: 1500 })));
      // The daemon notices a closed connection on its next write or poll.
      await new Promise((res) => setTimeout(res, 3000));
      const afterP = await probe(e, parent);
      console.log(`# streams before: ${formatProbe(before)}`);
      console.log(`# streams after:  ${formatProbe(afterP)}`);
      assert.equal(e.d.proc.exitCode ?? e.d.proc.signalCode, null, `berthd is still running: ${e.d.logs().slice(-2000)}`);
      assert.deepEqual(growth(before, afterP), []);
      assert.ok(afterP.fds <= before.fds + fdTolerance, `berthd fds ${before.fds} -> ${afterP.fds}: ${(await fdTargets(e.d.proc.pid!)).join(', ')}`);
    } finally {
      await e.d.cli(['rm', '-f', id]);
    }
  });

  it('containers recovered after a daemon crash leave nothing behind once removed', async () => {
    const before = await probe(e, parent);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await e.d.cli(['run', '-d', i % 2 ? '--network=none' : '--network=bridge', e.image, 'sleep', '600']);
      assert.equal(r.code, 0, r.stderr);
      ids.push(r.stdout.trim());
    }
    const quick = await e.d.cli(['run', '-d', e.image, 'sh', '-c', 'sleep 1; exit 3']);
    assert.equal(quick.code, 0, quick.stderr);
    ids.push(quick.stdout.trim());
    await e.d.kill();
    await new Promise((r) => setTimeout(r, 2000));
    await e.d.restart();
    const stopped = await e.d.cli(['stop', '-t', '1', ids[0]]);
    assert.equal(stopped.code, 0, stopped.stderr);
    const rm = await e.d.cli(['rm', '-f', ...ids]);
    assert.equal(rm.code, 0, rm.stderr);
    const afterP = await probe(e, parent);
    console.log(`# recovered before: ${formatProbe(before)}`);
    console.log(`# recovered after:  ${formatProbe(afterP)}`);
    assert.deepEqual(growth(before, afterP), [], 'state grew after removing recovered containers');
  });
});
