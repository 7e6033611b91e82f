import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliCommand, type CliResult } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { cgroupConfig, formatProbe, growth, probe, removeCgroupParent, uniqueCgroupParent, type Probe } from '../helpers/leak-probe.ts';
import { randomSubnet, sh } from '../helpers/network.ts';
import { runtimeSkipReason } from '../helpers/tasks.ts';

/**
 * kill -9 of berthd in the middle of bursts of `run -d`, `rm -f` and
 * network setup, at points taken from the daemon's own progress (a task
 * directory appearing, a netns file appearing, an event), never from a
 * timer. After the restart berthd answers, nothing that was done is lost
 * (a container whose `run -d` answered is running) and nothing half-made
 * is left: every task directory, runtime state directory, mount and netns
 * belongs to a running container. Once everything is removed, the machine
 * is as it was (mounts, cgroups, netns, veths, iptables, files, monitors).
 */
const BURST = 8;

describe('kill -9 of berthd during run, rm and network setup', { skip: runtimeSkipReason(), timeout: 900_000 }, () => {
  let e: Engine;
  const parent = uniqueCgroupParent();
  let baseline: Probe;
  before(async () => {
    e = await startEngine({ extraConfig: cgroupConfig(parent) });
    // What is made once and kept (the default bridge, its first rules) belongs in the baseline.
    const warm = await e.d.cli(['run', '--rm', e.image, 'true']);
    assert.equal(warm.code, 0, warm.stderr);
    baseline = await probe(e, parent);
  });
  after(async () => {
    try {
      await e?.stop();
    } finally {
      await removeCgroupParent(parent);
    }
  });

  const tasksDir = () => path.join(e.d.state, 'tasks', 'default');
  const ids = (r: CliResult) => (r.code === 0 ? [r.stdout.trim()] : []);

  /** Kill berthd once `dir` holds `n` entries: the daemon's progress, seen as it happens. */
  function killWhenEntries(dir: string, n: number): Promise<void> {
    mkdirSync(dir, { recursive: true });
    return new Promise((resolve) => {
      let fired = false;
      const check = () => {
        if (fired || readdirSync(dir).length < n) return;
        fired = true;
        w.close();
        void e.d.kill().then(resolve);
      };
      const w = watch(dir, check);
      check();
    });
  }

  /** Kill berthd at the `n`th container event named `action`, read from berthd's own event stream. */
  async function killAtEvent(action: string, n: number): Promise<{ fired: Promise<void> }> {
    const cmd = cliCommand(['-H', `unix://${e.d.socket}`, 'events', '--filter', 'type=container', '--format', '{{.Action}} {{.ID}}']);
    const p = spawn(cmd.file, cmd.args, { env: { ...process.env, ...cmd.env }, stdio: ['ignore', 'pipe', 'ignore'] });
    // The stream is known to be armed once it shows a marker container's removal; counting starts after it.
    let marker = '';
    let armed = false;
    let seen = 0;
    let buf = '';
    let onArmed!: () => void;
    const ready = new Promise<void>((r) => (onArmed = r));
    const fired = new Promise<void>((resolve) => {
      p.stdout!.on('data', (d: Buffer) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const [act, id = ''] = buf.slice(0, nl).trim().split(' ');
          buf = buf.slice(nl + 1);
          if (!armed) {
            if (act === 'destroy' && marker && (id.startsWith(marker) || marker.startsWith(id))) {
              armed = true;
              onArmed();
            }
          } else if (act === action && ++seen === n) void e.d.kill().then(resolve);
        }
      });
    });
    for (;;) {
      const m = await e.d.cli(['create', e.image, 'true']);
      assert.equal(m.code, 0, m.stderr);
      marker = m.stdout.trim();
      assert.equal((await e.d.cli(['rm', marker])).code, 0);
      // A removal before the stream was subscribed is not shown: try again with another marker.
      const shown = await Promise.race([ready.then(() => true), e.d.cli(['version']).then(() => armed)]);
      if (shown) break;
    }
    void fired.finally(() => p.kill('SIGKILL'));
    return { fired };
  }

  /** berthd answers, nothing done is lost and nothing half-made is left. */
  async function assertRecovered(answered: string[]): Promise<void> {
    const ps = await e.d.cli(['ps', '-q', '--no-trunc']);
    assert.equal(ps.code, 0, `berthd answers after the restart: ${ps.stderr}`);
    const running = new Set(ps.stdout.split('\n').filter(Boolean));
    for (const id of answered) assert.ok(running.has(id), `container ${id.slice(0, 12)} whose run answered is running`);
    const tasks = readdirSync(tasksDir());
    for (const t of tasks) {
      assert.ok(running.has(t), `task dir ${t.slice(0, 12)} (${readdirSync(path.join(tasksDir(), t)).join(',') || 'empty'}) belongs to a running container`);
    }
    const rtDir = path.join(e.d.state, 'runtime', 'runc', 'default');
    for (const r of existsSync(rtDir) ? readdirSync(rtDir) : []) assert.ok(tasks.includes(r), `runtime state ${r.slice(0, 12)} belongs to a task`);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(e.d.dir + '/'));
    for (const m of mounts) {
      const id = /[0-9a-f]{64}/.exec(m)?.[0];
      assert.ok(id && running.has(id), `mount ${m.slice(e.d.dir.length)} belongs to a running container`);
    }
    for (const n of readdirSync(path.join(e.d.state, 'netns'))) assert.ok(running.has(n), `netns ${n.slice(0, 12)} belongs to a running container`);
  }

  /** Remove every container (then run `andThen`); the machine is then as it was before the case. */
  async function assertClean(what: string, andThen?: () => Promise<void>): Promise<void> {
    const all = (await e.d.cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
    if (all.length) {
      const rm = await e.d.cli(['rm', '-f', '-v', ...all]);
      assert.equal(rm.code, 0, rm.stderr);
    }
    await andThen?.();
    // Leftover snapshots a restart found went to the snapshotter's trash, emptied in the background;
    // the trash dir itself is kept once made, as the default bridge is, so it is not counted.
    const trashes = readdirSync(path.join(e.d.root, 'snapshots')).map((s) => path.join(e.d.root, 'snapshots', s, 'trash')).filter((t) => existsSync(t));
    while (trashes.some((t) => readdirSync(t).length)) await new Promise((r) => setTimeout(r, 50));
    const now = await probe(e, parent);
    now.counts['root/snapshots'] -= trashes.length;
    const snapshots = (await sh('find', [path.join(e.d.root, 'snapshots'), '-maxdepth', '3'])).stdout;
    assert.deepEqual(growth(baseline, now), [], `${what}: left behind\n  before: ${formatProbe(baseline)}\n  after:  ${formatProbe(now)}\n${snapshots}`);
    assert.equal(now.counts.monitors, 0);
  }

  for (const at of [1, Math.ceil(BURST / 2)]) {
    it(`a run -d burst, killed when ${at} task dir(s) exist`, async () => {
      const killed = killWhenEntries(tasksDir(), at);
      const runs = Array.from({ length: BURST }, (_, i) => e.d.cli(['run', '-d', ...(i % 2 ? ['--network', 'none'] : []), e.image, 'sleep', '600']));
      await killed;
      const answered = (await Promise.all(runs)).flatMap(ids);
      await e.d.restart();
      await assertRecovered(answered);
      await assertClean(`run burst killed at ${at}`);
    });
  }

  it('a run -d burst, killed when the runtime starts making the first container', async () => {
    const killed = killWhenEntries(path.join(e.d.state, 'runtime', 'runc', 'default'), 1);
    const runs = Array.from({ length: BURST }, () => e.d.cli(['run', '-d', e.image, 'sleep', '600']));
    await killed;
    const answered = (await Promise.all(runs)).flatMap(ids);
    await e.d.restart();
    await assertRecovered(answered);
    await assertClean('run burst killed in runc create');
  });

  it('a run -d burst, killed when the first container snapshot appears', async () => {
    // The snapshot is prepared before the container's record is written.
    const snapshotsDir = path.join(e.d.root, 'snapshots', 'overlayfs', 'snapshots');
    const killed = killWhenEntries(snapshotsDir, readdirSync(snapshotsDir).length + 1);
    const runs = Array.from({ length: BURST }, () => e.d.cli(['run', '-d', e.image, 'sleep', '600']));
    await killed;
    const answered = (await Promise.all(runs)).flatMap(ids);
    await e.d.restart();
    await assertRecovered(answered);
    await assertClean('run burst killed at a snapshot');
  });

  it('a run --rm burst, killed at the second die event: the exited ones are removed at the restart', async () => {
    const { fired } = await killAtEvent('die', 2);
    const runs = Array.from({ length: BURST }, (_, i) => e.d.cli(['run', '--rm', e.image, 'sh', '-c', `exit ${i}`]));
    await fired;
    await Promise.all(runs);
    await e.d.restart();
    await assertRecovered([]);
    // Those that ran to their exit are gone (removed at their exit or by recovery); none is left exited.
    const exited = (await e.d.cli(['ps', '-aq', '--no-trunc', '--filter', 'status=exited'])).stdout.trim();
    assert.equal(exited, '', 'no --rm container is left exited');
    await assertClean('run --rm burst');
  });

  it('a run -d burst, killed at the third start event', async () => {
    const { fired } = await killAtEvent('start', 3);
    const runs = Array.from({ length: BURST }, () => e.d.cli(['run', '-d', e.image, 'sleep', '600']));
    await fired;
    const answered = (await Promise.all(runs)).flatMap(ids);
    await e.d.restart();
    await assertRecovered(answered);
    await assertClean('run burst killed at a start');
  });

  it('an rm -f burst, killed at the second destroy event', async () => {
    const made: string[] = [];
    for (let i = 0; i < BURST; i++) {
      const r = await e.d.cli(['run', '-d', ...(i % 2 ? ['-p', '127.0.0.1::80'] : []), e.image, 'sleep', '600']);
      assert.equal(r.code, 0, r.stderr);
      made.push(r.stdout.trim());
    }
    const { fired } = await killAtEvent('destroy', 2);
    const rms = made.map((id) => e.d.cli(['rm', '-f', id]));
    await fired;
    const removed = (await Promise.all(rms)).map((r, i) => (r.code === 0 ? made[i] : '')).filter(Boolean);
    await e.d.restart();
    await assertRecovered([]);
    const left = new Set((await e.d.cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean));
    for (const id of removed) assert.ok(!left.has(id), `container ${id.slice(0, 12)} whose rm answered stays removed`);
    await assertClean('rm burst');
  });

  it('leftovers of every kind a create cut short are swept at the restart, a live task never', async () => {
    const live = await e.d.cli(['run', '-d', e.image, 'sleep', '600']);
    assert.equal(live.code, 0, live.stderr);
    const liveId = live.stdout.trim();
    await e.d.kill();
    const fake = (n: number) => String(n).repeat(64);
    const rtDir = path.join(e.d.state, 'runtime', 'runc', 'default');
    mkdirSync(path.join(tasksDir(), fake(1)));
    mkdirSync(path.join(tasksDir(), fake(2)));
    writeFileSync(path.join(tasksDir(), fake(2), 'task.json.tmp'), '{"id":');
    mkdirSync(path.join(rtDir, fake(3)));
    mkdirSync(path.join(rtDir, fake(4)));
    writeFileSync(path.join(rtDir, fake(4), 'exec.fifo'), '');
    await e.d.restart();
    assert.deepEqual(readdirSync(tasksDir()), [liveId]);
    assert.deepEqual(readdirSync(rtDir), [liveId]);
    await assertRecovered([liveId]);
    await assertClean('planted leftovers');
  });

  it('network setup on a user network with published ports, killed when the first netns appears', async () => {
    const subnet = randomSubnet();
    const net = await e.d.cli(['network', 'create', '--subnet', subnet, 'crashnet']);
    assert.equal(net.code, 0, net.stderr);
    const netId = net.stdout.trim();
    const netnsDir = path.join(e.d.state, 'netns');
    const killed = killWhenEntries(netnsDir, 1);
    const runs = Array.from({ length: BURST / 2 }, () => e.d.cli(['run', '-d', '--network', 'crashnet', '-p', '127.0.0.1::80', e.image, 'sleep', '600']));
    await killed;
    const answered = (await Promise.all(runs)).flatMap(ids);
    await e.d.restart();
    await assertRecovered(answered);
    // The network keeps its IPAM dir (lock, last reserved address) from its first address on, until it goes.
    await assertClean('network setup', async () => {
      const rm = await e.d.cli(['network', 'rm', 'crashnet']);
      assert.equal(rm.code, 0, rm.stderr);
    });
    const bridge = `br-${netId.slice(0, 12)}`;
    assert.notEqual((await sh('ip', ['link', 'show', 'dev', bridge])).code, 0, `bridge ${bridge} is gone`);
    const rules = (await sh('iptables-save', [])).stdout.split('\n').filter((l) => l.includes(`berth-${netId.slice(0, 12)}`) || l.includes(subnet));
    assert.deepEqual(rules, [], 'no iptables rule of the network is left');
    assert.equal((await e.d.cli(['version'])).code, 0, 'berthd is running and answering');
  });
});

/**
 * A CNI plugin berthd started before its kill -9 runs on as an orphan. If it
 * finished after the restarted berthd's reconcile, what it made (an address
 * allocation of host-local) would belong to no one until the next start.
 * A real plugin cannot be held at a chosen point, so a stand-in host-local
 * (first in plugin_dirs, found by the bridge plugin through CNI_PATH) waits
 * for a gate file before it runs the real one; the test opens the gate only
 * once the restarted berthd answers.
 */
describe('kill -9 of berthd while a CNI plugin runs', { skip: runtimeSkipReason(), timeout: 600_000 }, () => {
  let e: Engine;
  const parent = uniqueCgroupParent();
  const stubDir = mkdtempSync(path.join(os.tmpdir(), 'berth-cni-stub-'));
  const hold = path.join(stubDir, 'hold');
  const held = path.join(stubDir, 'held');
  const gate = path.join(stubDir, 'gate');
  before(async () => {
    writeFileSync(
      path.join(stubDir, 'host-local'),
      [
        '#!/bin/sh',
        `if [ "$CNI_COMMAND" = ADD ] && [ -e ${hold} ]; then`,
        `  echo "$$ $PPID" > ${held}.tmp && mv ${held}.tmp ${held}`,
        `  while [ ! -e ${gate} ]; do sleep 0.02; done`,
        'fi',
        'exec /usr/lib/cni/host-local',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    e = await startEngine({ extraConfig: `plugin_dirs = ["${stubDir}", "/usr/lib/cni"]\n${cgroupConfig(parent)}` });
  });
  after(async () => {
    writeFileSync(gate, '');
    try {
      await e?.stop();
    } finally {
      // A stop that reports a leak must not leave the stub plugins' directory behind too.
      await removeCgroupParent(parent);
      rmSync(stubDir, { recursive: true, force: true });
    }
  });

  it('an address a plugin of the previous life allocates is not left behind', async () => {
    const warm = await e.d.cli(['run', '--rm', e.image, 'true']);
    assert.equal(warm.code, 0, warm.stderr);
    const baseline = await probe(e, parent);
    writeFileSync(hold, '');
    const run = e.d.cli(['run', '-d', e.image, 'sleep', '600']);
    await waitForFile(held);
    const pluginPids = readFileSync(held, 'utf8').trim().split(' ').map(Number);
    await e.d.kill();
    await run;
    rmSync(hold);
    await e.d.restart();
    assert.equal((await e.d.cli(['version'])).code, 0, 'berthd answers after the restart');
    // The held plugin (and the bridge plugin above it) now either run to their end or are gone already.
    writeFileSync(gate, '');
    for (const pid of pluginPids) await waitForExit(pid);
    const all = (await e.d.cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
    if (all.length) assert.equal((await e.d.cli(['rm', '-f', ...all])).code, 0);
    const now = await probe(e, parent);
    assert.deepEqual(growth(baseline, now), [], `left behind\n  before: ${formatProbe(baseline)}\n  after:  ${formatProbe(now)}`);
    const again = await e.d.cli(['run', '--rm', e.image, 'true']);
    assert.equal(again.code, 0, again.stderr);
  });
});

function waitForFile(file: string): Promise<void> {
  return new Promise((resolve) => {
    const w = watch(path.dirname(file), () => check());
    const check = () => {
      if (!existsSync(file)) return;
      w.close();
      resolve();
    };
    check();
  });
}

/** Gone, or a zombie nobody reaped yet: either way it does nothing more. */
async function waitForExit(pid: number): Promise<void> {
  for (;;) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
