import assert from 'node:assert/strict';
import { readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kindOf } from '../../src/core/errors.ts';
import { readLog } from '../../src/runtime/tasks/log-reader.ts';
import { monitorPid } from '../../src/runtime/tasks/monitor.ts';
import { MonitorTaskService, startFailureCode } from '../../src/runtime/tasks/tasks.ts';
import type { TaskEnv } from '../helpers/tasks.ts';
import { collect, runtimeSkipReason, taskEnv, until, vmRssKb } from '../helpers/tasks.ts';

const skip = runtimeSkipReason();

interface JsonLogLine {
  log: string;
  stream: string;
  time: string;
}

async function jsonLog(p: string): Promise<JsonLogLine[]> {
  const text = await readFile(p, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JsonLogLine);
}

describe('tasks: lifecycle, logs and stdio on runc', { skip }, () => {
  let env: TaskEnv;
  before(async () => {
    env = await taskEnv();
  });
  after(async () => {
    await env.cleanup();
  });

  test('exit codes: 0, 3 and 128+N for a signal', async () => {
    const { svc, ctx } = env;
    await env.run('exit0', ['true'], { start: false });
    const w0 = svc.wait(ctx, 'exit0');
    await svc.start(ctx, 'exit0');
    assert.equal((await w0).exitCode, 0);

    await env.run('exit3', ['sh', '-c', 'exit 3']);
    assert.equal((await svc.wait(ctx, 'exit3')).exitCode, 3);
    const st = await svc.state(ctx, 'exit3');
    assert.equal(st.status, 'stopped');
    assert.ok(st.startedAt && st.startedAt <= st.exit!.finishedAt);
    assert.equal(st.exit?.exitCode, 3);
    assert.match(st.exit!.finishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

    await env.run('killed', ['sleep', '1000']);
    assert.equal((await svc.state(ctx, 'killed')).status, 'running');
    await svc.kill(ctx, 'killed', 'SIGKILL');
    const ex = await svc.wait(ctx, 'killed');
    assert.equal(ex.exitCode, 137);
    assert.equal(ex.signal, 9);
    for (const id of ['exit0', 'exit3', 'killed']) await svc.delete(ctx, id);
    assert.deepEqual(await svc.list(ctx), []);
  });

  test('stdout and stderr in json-file logs, with partial lines split at 16 KiB', async () => {
    const { svc, ctx } = env;
    const script = 'echo out; echo err >&2; printf "<tag> & \\"q\\" \\t\\n"; head -c 40000 /dev/zero | tr "\\0" a; echo; printf tail';
    const { logPath } = await env.run('jlog', ['sh', '-c', script]);
    assert.equal((await svc.wait(ctx, 'jlog')).exitCode, 0);
    const lines = await jsonLog(logPath);
    const stdout = lines.filter((l) => l.stream === 'stdout');
    assert.deepEqual(
      lines.filter((l) => l.stream === 'stderr').map((l) => l.log),
      ['err\n'],
    );
    assert.equal(stdout[0].log, 'out\n');
    assert.equal(stdout[1].log, '<tag> & "q" \t\n');
    // The raw file escapes HTML characters as Go's encoding/json does.
    assert.match(await readFile(logPath, 'utf8'), /\\u003ctag\\u003e \\u0026/);
    // 40000 bytes + newline: two 16 KiB partial records, then the rest with its newline.
    assert.deepEqual(
      stdout.slice(2, 5).map((l) => l.log.length),
      [16384, 16384, 40000 - 2 * 16384 + 1],
    );
    assert.equal(stdout[5].log, 'tail');
    for (const l of lines) assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    await svc.delete(ctx, 'jlog');
  });

  test('json-file escapes as Go does: invalid UTF-8, CR, U+2028', async () => {
    const { svc, ctx } = env;
    const { logPath } = await env.run('utf8', ['printf', '\\xff\\xc3\\xa9\\r\\xe2\\x80\\xa8\\x01\\n']);
    await svc.wait(ctx, 'utf8');
    const raw = await readFile(logPath, 'utf8');
    assert.ok(raw.startsWith('{"log":"\\ufffd\u00e9\\r\\u2028\\u0001\\n","stream":"stdout"'), raw);
    assert.equal((JSON.parse(raw) as JsonLogLine).log, '\ufffd\u00e9\r\u2028\u0001\n');
    await svc.delete(ctx, 'utf8');
  });

  test('CRI log format', async () => {
    const { svc, ctx } = env;
    const { logPath } = await env.run('crilog', ['sh', '-c', 'echo one; echo two >&2; printf three'], { log: 'cri' });
    await svc.wait(ctx, 'crilog');
    const lines = (await readFile(logPath, 'utf8')).split('\n').filter(Boolean);
    const re = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([FP]) (.*)$/;
    const parsed = lines.map((l) => re.exec(l)?.slice(2));
    assert.deepEqual(parsed.filter((p) => p?.[0] === 'stdout'), [
      ['stdout', 'F', 'one'],
      ['stdout', 'P', 'three'],
    ]);
    assert.deepEqual(parsed.filter((p) => p?.[0] === 'stderr'), [['stderr', 'F', 'two']]);
    await svc.delete(ctx, 'crilog');
  });

  test('reopenLog: the CRI moves the log away and the monitor starts a new file', async () => {
    const { svc, ctx } = env;
    const { logPath } = await env.run('reopen', ['sh', '-c', 'echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second'], { log: 'cri' });
    await until(() => readFile(logPath, 'utf8'), (t) => t.includes('first'), 'the first line');
    await rename(logPath, logPath + '.old');
    await svc.reopenLog(ctx, 'reopen');
    await svc.exec(ctx, 'reopen', 'go', { args: ['touch', '/tmp/go'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } });
    await svc.startExec(ctx, 'reopen', 'go');
    await svc.wait(ctx, 'reopen');
    assert.match(await readFile(logPath + '.old', 'utf8'), /stdout F first\n$/);
    assert.match(await readFile(logPath, 'utf8'), /^\S+ stdout F second\n$/);
    await svc.delete(ctx, 'reopen');
  });

  test('readLog follows a running container across rotations until it exits', async () => {
    const { svc, ctx } = env;
    const { logPath } = await env.run('follow', ['sh', '-c', 'for i in $(seq 1 300); do echo line $i; done; sleep 0.3; echo last; exit 0'], {
      start: false,
      maxSize: 1500,
      maxFiles: 100,
    });
    const exited = svc.wait(ctx, 'follow');
    const lines: string[] = [];
    const reading = (async () => {
      for await (const r of readLog(ctx, { path: logPath, format: 'json-file', maxFiles: 100 }, { follow: true, stop: exited })) lines.push(r.text.trim());
    })();
    await svc.start(ctx, 'follow');
    await reading;
    assert.deepEqual(lines, [...Array.from({ length: 300 }, (_, i) => `line ${i + 1}`), 'last'], `got ${lines.length}: ${lines.filter((l, i) => l !== `line ${i + 1}`).slice(0, 5)} at ${lines.findIndex((l, i) => l !== `line ${i + 1}`)}`);
    await svc.delete(ctx, 'follow');
  });

  test('log rotation by size and count', async () => {
    const { svc, ctx } = env;
    const { logPath } = await env.run('rot', ['sh', '-c', 'seq 1 400'], { maxSize: 2000, maxFiles: 3 });
    await svc.wait(ctx, 'rot');
    const files = (await readdir(path.dirname(logPath))).filter((f) => f.startsWith('rot.log')).sort();
    assert.deepEqual(files, ['rot.log', 'rot.log.1', 'rot.log.2']);
    const kept: string[] = [];
    for (const f of ['rot.log.2', 'rot.log.1', 'rot.log']) {
      const text = await readFile(path.join(path.dirname(logPath), f), 'utf8');
      // A file grows past max-size by at most one record before it rotates.
      assert.ok(text.length < 2000 + 100, `${f} is ${text.length} bytes`);
      kept.push(...text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as JsonLogLine).log.trim()));
    }
    assert.equal(kept.at(-1), '400');
    // The kept records are the newest, in order.
    assert.deepEqual(kept, kept.map((_, i) => String(401 - kept.length + i)));
    await svc.delete(ctx, 'rot');
  });

  test('stdin reaches cat through attach; output arrives framed per stream', async () => {
    const { svc, ctx } = env;
    const { logPath } = await env.run('cat', ['sh', '-c', 'cat; echo done >&2'], { start: false, stdio: { stdin: true, stdinOnce: true } });
    const conn = await svc.attach(ctx, 'cat');
    const got = collect(conn);
    // An output-only client hanging up must not close stdin.
    const observer = await svc.attach(ctx, 'cat');
    observer.destroy();
    await svc.start(ctx, 'cat');
    await new Promise((r) => setTimeout(r, 100));
    conn.write('hello\nworld\n');
    conn.end();
    const { stdout, stderr } = await got;
    assert.equal(stdout, 'hello\nworld\n');
    assert.equal(stderr, 'done\n');
    assert.equal((await svc.wait(ctx, 'cat')).exitCode, 0);
    assert.deepEqual(
      (await jsonLog(logPath)).map((l) => l.log),
      ['hello\n', 'world\n', 'done\n'],
    );
    await svc.delete(ctx, 'cat');
  });

  test('closeStdin ends the input of a container without stdinOnce', async () => {
    const { svc, ctx } = env;
    await env.run('cat2', ['cat'], { stdio: { stdin: true } });
    const conn = await svc.attach(ctx, 'cat2');
    const got = collect(conn);
    conn.write('abc\n');
    await until(() => svc.pids(ctx, 'cat2'), (p) => p.length > 0, 'cat to run');
    await new Promise((r) => setTimeout(r, 100));
    await svc.closeStdin(ctx, 'cat2');
    assert.equal((await svc.wait(ctx, 'cat2')).exitCode, 0);
    assert.equal((await got).stdout, 'abc\n');
    await svc.delete(ctx, 'cat2');
  });

  test('a tty: output through attach, resize changes stty size inside', async () => {
    const { svc, ctx } = env;
    await env.run('tty', ['sh'], { start: false, stdio: { tty: true, stdin: true, rows: 40, cols: 100 } });
    const conn = await svc.attach(ctx, 'tty');
    let out = '';
    conn.on('data', (d: Buffer) => (out += d.toString()));
    await svc.start(ctx, 'tty');
    conn.write('stty size\n');
    await until(() => out, (o) => o.includes('40 100'), 'the initial size');
    await svc.resize(ctx, 'tty', { rows: 30, cols: 90 });
    conn.write('stty size; exit 7\n');
    await until(() => out, (o) => o.includes('30 90'), 'the new size');
    const ex = await svc.wait(ctx, 'tty');
    assert.equal(ex.exitCode, 7);
    conn.destroy();
    await svc.delete(ctx, 'tty');
  });

  test('exec with its own stdio and exit code; a signal gives 128+N', async () => {
    const { svc, ctx } = env;
    await env.run('host', ['sleep', '1000']);
    const proc = { args: ['sh', '-c', 'echo out; echo err >&2; read x; echo got $x; exit 4'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } };
    await svc.exec(ctx, 'host', 'e1', proc, { stdin: true, stdinOnce: true });
    assert.equal((await svc.execState(ctx, 'host', 'e1')).status, 'created');
    const conn = await svc.attach(ctx, 'host', 'e1');
    const got = collect(conn);
    const { pid } = await svc.startExec(ctx, 'host', 'e1');
    assert.ok(pid > 0);
    conn.end('line\n');
    assert.deepEqual(await got, { stdout: 'out\ngot line\n', stderr: 'err\n' });
    assert.equal((await svc.wait(ctx, 'host', 'e1')).exitCode, 4);
    assert.equal((await svc.execState(ctx, 'host', 'e1')).exit?.exitCode, 4);

    await svc.exec(ctx, 'host', 'e2', { args: ['sleep', '1000'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } });
    await svc.startExec(ctx, 'host', 'e2');
    await svc.kill(ctx, 'host', 'TERM', { execId: 'e2' });
    assert.equal((await svc.wait(ctx, 'host', 'e2')).exitCode, 143);

    await svc.exec(ctx, 'host', 'e3', { args: ['nope'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } });
    await assert.rejects(svc.startExec(ctx, 'host', 'e3'), (err: unknown) => {
      assert.equal(kindOf(err), 'InvalidArgument');
      assert.equal(startFailureCode(err), 127);
      assert.match((err as Error).message, /exec: "nope": executable file not found in \$PATH/);
      return true;
    });
    assert.equal((await svc.wait(ctx, 'host', 'e3')).exitCode, 127);
    await svc.exec(ctx, 'host', 'e4', { args: ['stty', 'size'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } }, { tty: true, rows: 33, cols: 77 });
    const tty = await svc.attach(ctx, 'host', 'e4');
    let ttyOut = '';
    tty.on('data', (d: Buffer) => (ttyOut += d.toString()));
    const ttyEnd = new Promise((r) => tty.once('close', r));
    await svc.startExec(ctx, 'host', 'e4');
    assert.equal((await svc.wait(ctx, 'host', 'e4')).exitCode, 0);
    await ttyEnd;
    assert.equal(ttyOut, '33 77\r\n');
    assert.deepEqual((await svc.listExecs(ctx, 'host')).map((e) => [e.execId, e.status, e.exit?.exitCode]), [
      ['e1', 'stopped', 4],
      ['e2', 'stopped', 143],
      ['e3', 'stopped', 127],
      ['e4', 'stopped', 0],
    ]);
    for (const e of ['e1', 'e2', 'e3', 'e4']) await svc.deleteExec(ctx, 'host', e);
    assert.equal((await svc.state(ctx, 'host')).status, 'running');
    await svc.delete(ctx, 'host', { force: true });
  });

  test('a missing executable gives 127, a non-executable file 126, with nothing left behind', async () => {
    const { svc, ctx } = env;
    await assert.rejects(env.run('missing', ['nope']), (err: unknown) => {
      assert.equal(kindOf(err), 'InvalidArgument');
      assert.equal(startFailureCode(err), 127);
      assert.match((err as Error).message, /exec: "nope": executable file not found in \$PATH/);
      return true;
    });
    await assert.rejects(env.run('noexec', ['/bin/not-executable']), (err: unknown) => {
      assert.equal(startFailureCode(err), 126);
      assert.match((err as Error).message, /permission denied/);
      return true;
    });
    assert.deepEqual(await svc.list(ctx), []);
    assert.deepEqual(await readdir(path.join(env.state, 'tasks', 'default')), []);
  });

  test('pause, resume, stats, pids, update; delete refuses a running task without force', async () => {
    const { svc, ctx } = env;
    const { b } = await env.run('busy', ['sh', '-c', 'sleep 1000 & sleep 1000']);
    await svc.pause(ctx, 'busy');
    assert.equal((await svc.state(ctx, 'busy')).status, 'paused');
    await svc.resume(ctx, 'busy');
    assert.equal((await svc.state(ctx, 'busy')).status, 'running');
    const pids = await until(() => svc.pids(ctx, 'busy'), (p) => p.length === 2, 'two processes');
    assert.equal(pids.length, 2);
    const stats = await svc.stats(ctx, 'busy');
    assert.ok(stats.memory.usage > 0);
    assert.ok(stats.cpu.totalNs > 0);
    assert.equal(stats.pids.current, 2);
    await svc.update(ctx, 'busy', { pids: { limit: 50 } });
    assert.equal((await readFile(path.join('/sys/fs/cgroup/pids', b.cgroup, 'pids.max'), 'utf8')).trim(), '50');
    await assert.rejects(svc.delete(ctx, 'busy'), (err: unknown) => kindOf(err) === 'Conflict');
    const ex = await svc.delete(ctx, 'busy', { force: true });
    assert.equal(ex?.exitCode, 137);
    await assert.rejects(svc.state(ctx, 'busy'), (err: unknown) => kindOf(err) === 'NotFound');
    await assert.rejects(readdir(path.join('/sys/fs/cgroup/pids', b.cgroup)), /ENOENT/);
  });

  test('namespaces keep tasks apart; an unknown runtime or a duplicate id is refused', async () => {
    const { svc, ctx } = env;
    const k8s = { ...ctx, namespace: 'k8s.io' };
    const b = await env.bundle(['sh', '-c', 'exit 1']);
    const b2 = await env.bundle(['sh', '-c', 'exit 2']);
    await svc.create(ctx, { id: 'same', bundle: b.bundle });
    await svc.create(k8s, { id: 'same', bundle: b2.bundle });
    await assert.rejects(svc.create(ctx, { id: 'same', bundle: b.bundle }), (err: unknown) => kindOf(err) === 'AlreadyExists');
    await assert.rejects(svc.create(ctx, { id: 'other', bundle: b.bundle, runtime: 'kata' }), (err: unknown) => kindOf(err) === 'InvalidArgument');
    const noMonitor = new MonitorTaskService({ stateDir: env.state, monitorPath: '/nonexistent/berth-monitor' });
    await assert.rejects(noMonitor.create(ctx, { id: 'other', bundle: b.bundle }), (err: unknown) => kindOf(err) === 'FailedPrecondition');
    await svc.start(ctx, 'same');
    await svc.start(k8s, 'same');
    assert.equal((await svc.wait(ctx, 'same')).exitCode, 1);
    assert.equal((await svc.wait(k8s, 'same')).exitCode, 2);
    assert.deepEqual((await svc.list(k8s)).map((t) => t.namespace), ['k8s.io']);
    await svc.delete(ctx, 'same');
    await svc.delete(k8s, 'same');
    await assert.rejects(svc.wait(ctx, 'same'), (err: unknown) => kindOf(err) === 'NotFound');
  });

  test('a pod: containers join the sandbox task\'s namespaces, each with its own log', async () => {
    const { svc, ctx } = env;
    const sandbox = await env.bundle(['sleep', '1000']);
    await svc.create(ctx, { id: 'pod-sandbox', bundle: sandbox.bundle });
    const { pid } = await svc.start(ctx, 'pod-sandbox');
    const ns = (t: string) => `/proc/${pid}/ns/${t}`;
    const app = await env.bundle(['sh', '-c', 'readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; hostname'], {
      joinNamespaces: { network: ns('net'), ipc: ns('ipc'), uts: ns('uts') },
    });
    const logPath = path.join(env.state, 'logs', 'pod-app.log');
    await svc.create(ctx, { id: 'pod-app', bundle: app.bundle, log: { path: logPath, format: 'cri' } });
    await svc.start(ctx, 'pod-app');
    assert.equal((await svc.wait(ctx, 'pod-app')).exitCode, 0);
    const lines = (await readFile(logPath, 'utf8')).trim().split('\n').map((l) => l.split(' ').slice(3).join(' '));
    const { readlink } = await import('node:fs/promises');
    assert.deepEqual(lines, [await readlink(ns('net')), await readlink(ns('ipc')), 'task']);
    await svc.delete(ctx, 'pod-app');
    await svc.delete(ctx, 'pod-sandbox', { force: true });
  });

  test('an OOM kill is reported', async () => {
    const { svc, ctx } = env;
    const mem = 16 * 1024 * 1024;
    const b = await env.bundle(['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'], { resources: { memory: { limit: mem, swap: mem } } });
    await svc.create(ctx, { id: 'oom', bundle: b.bundle });
    await svc.start(ctx, 'oom');
    const ex = await svc.wait(ctx, 'oom');
    assert.equal(ex.oomKilled, true);
    assert.notEqual(ex.exitCode, 0);
    assert.equal((await svc.state(ctx, 'oom')).exit?.oomKilled, true);
    await svc.delete(ctx, 'oom');

    await env.run('no-oom', ['true']);
    assert.equal((await svc.wait(ctx, 'no-oom')).oomKilled, false);
    await svc.delete(ctx, 'no-oom');
  });

  test('the monitor stays small: VmRSS', async () => {
    const { svc, ctx } = env;
    await env.run('rss', ['sh', '-c', 'while true; do echo tick; sleep 0.05; done']);
    const dir = path.join(env.state, 'tasks', 'default', 'rss');
    const pid = (await monitorPid(dir))!;
    assert.ok(pid > 0);
    await until(() => readFile(path.join(env.state, 'logs', 'rss.log'), 'utf8').catch(() => ''), (t) => t.split('\n').length > 5, 'some output');
    const kb = await vmRssKb(pid);
    console.log(`berth-monitor VmRSS: ${kb} kB`);
    assert.ok(kb < 4096, `monitor RSS ${kb} kB`);
    await svc.delete(ctx, 'rss', { force: true });
  });
});
