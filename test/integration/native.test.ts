import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultInitPath, defaultMonitorPath, defaultPausePath } from '../../src/runtime/tasks/monitor.ts';
import { runProcess } from '../helpers/daemon.ts';
import type { TaskEnv } from '../helpers/tasks.ts';
import { runtimeSkipReason, taskEnv, until } from '../helpers/tasks.ts';
import { connectUnix } from '../../src/runtime/tasks/monitor.ts';
import { demux } from '../../src/core/stdcopy.ts';

const skip = runtimeSkipReason();

function runInit(args: string[], onSpawn?: (pid: number) => void): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(defaultInitPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.once('error', reject);
    p.once('spawn', () => onSpawn?.(p.pid!));
    p.once('exit', (code) => resolve({ code, out }));
  });
}

describe('berth-init', { skip }, () => {
  test('is statically linked', async () => {
    const elf = await readFile(defaultInitPath);
    // No PT_INTERP program header: nothing to load, so it runs in any image.
    assert.equal(elf.includes(Buffer.from('/lib64/ld-linux')), false);
  });

  test('exits with the child status, 128+N for a signal, 127 for a missing command', async () => {
    assert.equal((await runInit(['/bin/busybox', 'sh', '-c', 'exit 3'])).code, 3);
    assert.equal((await runInit(['/bin/busybox', 'sh', '-c', 'kill -TERM $$'])).code, 143);
    const missing = await runInit(['/no/such/command']);
    assert.equal(missing.code, 127);
    assert.match(missing.out, /berth-init: exec \/no\/such\/command/);
  });

  test('forwards signals to the child', async () => {
    let initPid = 0;
    const done = runInit(['/bin/busybox', 'sh', '-c', 'trap "echo got-usr1; exit 9" USR1; while true; do sleep 0.05; done'], (pid) => (initPid = pid));
    await until(() => initPid, Boolean, 'init to start');
    // Give the shell time to install its trap before signalling.
    await until(() => readFile(`/proc/${initPid}/task/${initPid}/children`, 'utf8').catch(() => ''), (c) => c.trim() !== '', 'the child');
    await new Promise((r) => setTimeout(r, 200));
    process.kill(initPid, 'SIGUSR1');
    const r = await done;
    assert.equal(r.code, 9);
    assert.match(r.out, /got-usr1/);
  });
});

describe('berth-pause', { skip }, () => {
  const children = (pid: number) => readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').then((c) => c.trim(), () => '');
  const exited = (p: ReturnType<typeof spawn>) => new Promise<{ code: number | null; signal: string | null }>((r) => p.once('exit', (code, signal) => r({ code, signal })));

  test('is statically linked', async () => {
    assert.equal((await readFile(defaultPausePath)).includes(Buffer.from('/lib64/ld-linux')), false);
  });

  test('ignores other signals and exits 0 on SIGINT and on SIGTERM', async () => {
    for (const stop of ['SIGINT', 'SIGTERM'] as const) {
      const p = spawn(defaultPausePath, [], { stdio: 'ignore' });
      const done = exited(p);
      // Once pause waits in sigwait (every signal blocked), USR1 and HUP must not end it; the stop signal must.
      await until(() => readFile(`/proc/${p.pid}/wchan`, 'utf8').catch(() => ''), (w) => w.includes('sigtimedwait'), 'pause to wait for signals');
      p.kill('SIGUSR1');
      p.kill('SIGHUP');
      p.kill(stop);
      assert.deepEqual(await done, { code: 0, signal: null }, stop);
    }
  });

  test('as pid 1 of a pid namespace, reaps the orphans re-parented to it', async () => {
    const u = spawn('unshare', ['--pid', '--fork', defaultPausePath], { stdio: 'ignore' });
    const done = exited(u);
    const pause = Number(await until(() => children(u.pid!), Boolean, 'the pause process'));
    // The shell exits at once; its background reader is orphaned into the namespace, whose reaper is pause.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-pause-'));
    try {
      const fifo = path.join(dir, 'fifo');
      assert.equal((await runProcess('mkfifo', [fifo])).code, 0);
      const r = await runProcess('nsenter', ['-t', String(pause), '--pid', '/bin/busybox', 'sh', '-c', `/bin/busybox cat ${fifo} >/dev/null 2>&1 </dev/null & exit 0`]);
      assert.equal(r.code, 0, r.stderr);
      await until(() => children(pause), Boolean, 'the orphan under pause');
      await writeFile(fifo, 'done\n');
      // A zombie stays listed among its parent's children until it is reaped.
      await until(() => children(pause), (c) => c === '', 'the orphan to be reaped');
    } finally {
      // pause's own exit (0 on SIGTERM) ends unshare with the same status.
      process.kill(pause, 'SIGTERM');
      await rm(dir, { recursive: true, force: true });
    }
    assert.deepEqual(await done, { code: 0, signal: null });
  });
});

describe('berth-monitor', { skip }, () => {
  let env: TaskEnv;
  before(async () => {
    env = await taskEnv();
  });
  after(async () => {
    await env.cleanup();
  });

  test('usage error without the required flags', async () => {
    const code = await new Promise((resolve) => spawn(defaultMonitorPath, ['--dir', '/nonexistent'], { stdio: 'ignore' }).once('exit', resolve));
    assert.equal(code, 2);
  });

  test('berth-init as pid 1 of a container reaps and passes the exit code', async () => {
    const { svc, ctx } = env;
    const b = await env.bundle(['/berth-init', 'sh', '-c', 'sleep 0 & sleep 0 & wait; exit 5']);
    await copyFile(defaultInitPath, path.join(b.bundle, 'rootfs/berth-init'));
    await svc.create(ctx, { id: 'init', bundle: b.bundle });
    await svc.start(ctx, 'init');
    assert.equal((await svc.wait(ctx, 'init')).exitCode, 5);
    await svc.delete(ctx, 'init');
  });

  test('a client that never reads does not block the container; the log is complete', async () => {
    const { svc, ctx } = env;
    // About 8 MiB of output, far beyond any socket and client buffer.
    const { logPath } = await env.run('flood', ['sh', '-c', 'seq 1 1000000; echo end'], { start: false });
    const stuck = await svc.attach(ctx, 'flood');
    stuck.pause();
    const dir = path.join(env.state, 'tasks', 'default', 'flood');
    const raw = await connectUnix(ctx, path.join(dir, 'attach.sock'));
    raw.pause();
    await svc.start(ctx, 'flood');
    assert.equal((await svc.wait(ctx, 'flood')).exitCode, 0);
    const log = await readFile(logPath, 'utf8');
    const lines = log.split('\n').filter(Boolean);
    assert.equal(lines.length, 1_000_001);
    assert.equal((JSON.parse(lines.at(-1)!) as { log: string }).log, 'end\n');
    stuck.destroy();
    raw.destroy();
    await svc.delete(ctx, 'flood');
  });

  test('a client that asked for all the output holds it while behind and loses no byte', async () => {
    const { svc, ctx } = env;
    // seq writes 6,888,896 bytes, far beyond the 1 MiB a client may fall behind before it is let go.
    const { logPath } = await env.run('held', ['seq', '1', '1000000'], { start: false });
    const held = await svc.attach(ctx, 'held', undefined, { all: true });
    held.pause();
    const other = await svc.attach(ctx, 'held');
    other.pause();
    await svc.start(ctx, 'held');
    const { pid } = await svc.state(ctx, 'held');
    // Held output: seq waits on its full pipe and the monitor reads (and logs) no more, for as long as
    // the client does not read. Output that is not held runs on to seq's exit.
    let seen = { log: -1, times: 0 };
    const outcome = await until(
      async () => {
        if ((await svc.state(ctx, 'held')).status === 'stopped') return 'exited';
        const waiting = (await readFile(`/proc/${pid}/wchan`, 'utf8').catch(() => '')).includes('pipe_write');
        const log = (await stat(logPath)).size;
        seen = waiting && log === seen.log ? { log, times: seen.times + 1 } : { log, times: 0 };
        return seen.times >= 3 ? 'held' : 'running';
      },
      (o) => o !== 'running',
      'seq to wait on held output, or to exit',
    );
    assert.equal(outcome, 'held', 'the output did not wait for the client that is behind');
    // The log has a record per line: its last says how far the monitor read, well short of the end.
    const tail = (await readFile(logPath, 'utf8')).trimEnd().split('\n').at(-1)!;
    const lastRead = Number((JSON.parse(tail) as { log: string }).log.trim().split('\n').at(-1));
    assert.ok(lastRead < 300_000, `the monitor read on to line ${lastRead} of 1000000`);
    let bytes = 0;
    held.resume();
    const read = demux(held, (_n, data) => (bytes += data.length));
    assert.equal((await svc.wait(ctx, 'held')).exitCode, 0);
    await read;
    assert.equal(bytes, 6_888_896);
    other.destroy();
    await svc.delete(ctx, 'held');
  });
});
