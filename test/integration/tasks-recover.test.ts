import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorPid } from '../../src/runtime/tasks/monitor.ts';
import { MonitorTaskService } from '../../src/runtime/tasks/tasks.ts';
import { nodeBin, projectRoot } from '../helpers/daemon.ts';
import type { TaskEnv } from '../helpers/tasks.ts';
import { collect, runtimeSkipReason, taskEnv, until } from '../helpers/tasks.ts';

const skip = runtimeSkipReason();

/** The process that creates tasks and is then killed, as berthd would be. */
const childScript = (root: string) => `
import { MonitorTaskService } from ${JSON.stringify(path.join(root, 'src/runtime/tasks/tasks.ts'))};
import { rootCtx } from ${JSON.stringify(path.join(root, 'src/core/context.ts'))};
const [state, tickerBundle, quickBundle, logDir] = process.argv.slice(2);
const svc = new MonitorTaskService({ stateDir: state });
const ctx = rootCtx();
await svc.create(ctx, { id: 'ticker', bundle: tickerBundle, log: { path: logDir + '/ticker.log', format: 'json-file' } });
await svc.start(ctx, 'ticker');
await svc.create(ctx, { id: 'quick', bundle: quickBundle, log: { path: logDir + '/quick.log', format: 'cri' } });
await svc.start(ctx, 'quick');
void svc.wait(ctx, 'quick');
await svc.create(ctx, { id: 'waiting', bundle: process.argv[6] });
await svc.create(ctx, { id: 'frozen', bundle: process.argv[7] });
await svc.start(ctx, 'frozen');
await svc.pause(ctx, 'frozen');
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`;

/** runc for queries; `create` gets no pipes, since the container would hold them open. */
function runc(args: string[]): Promise<string> {
  if (args.includes('create')) {
    return new Promise((resolve, reject) =>
      spawn('runc', args, { stdio: 'ignore' }).once('exit', (code) => (code === 0 ? resolve('') : reject(new Error(`runc create: ${code}`)))),
    );
  }
  return new Promise((resolve, reject) =>
    execFile('runc', args, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout))),
  );
}

function ppid(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/PPid:\s+(\d+)/.exec(s)?.[1]));
}

describe('tasks survive the death of the process that created them', { skip }, () => {
  let env: TaskEnv;
  before(async () => {
    env = await taskEnv();
  });
  after(async () => {
    await env.cleanup();
  });

  test('kill -9 of the creator; a fresh TaskService recovers, streams, execs and stops', async () => {
    const { state, ctx } = env;
    const ticker = await env.bundle(['sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
    const quick = await env.bundle(['sh', '-c', 'sleep 1; echo bye; exit 42']);
    const logDir = path.join(state, 'logs');
    await mkdir(logDir, { recursive: true });
    const script = path.join(state, 'creator.ts');
    await writeFile(script, childScript(projectRoot));
    const waiting = await env.bundle(['sh', '-c', 'exit 5']);
    const frozen = await env.bundle(['sleep', '1000']);
    const child = spawn(nodeBin, [script, state, ticker.bundle, quick.bundle, logDir, waiting.bundle, frozen.bundle], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await until(() => out, (o) => o.includes('ready') || child.exitCode !== null, 'the creator to be ready', 30_000);
    assert.equal(out.trim(), 'ready');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    // A task berthd died creating: its record exists, its monitor never reported.
    const half = path.join(state, 'tasks', 'default', 'half');
    await mkdir(half, { recursive: true });
    await writeFile(path.join(half, 'task.json'), JSON.stringify({ id: 'half', namespace: 'default', bundle: ticker.bundle, runtime: 'runc', stdio: {}, createdAt: new Date().toISOString() }));

    const tickerDir = path.join(state, 'tasks', 'default', 'ticker');
    const mon = (await monitorPid(tickerDir))!;
    assert.ok(mon > 0, 'the monitor outlives its creator');
    assert.notEqual(await ppid(mon), child.pid);
    // "quick" exits while nobody watches.
    await until(() => existsSync(path.join(state, 'tasks', 'default', 'quick', 'exit')), Boolean, 'quick to exit');

    // A ghost: runtime state whose task directory is gone.
    const ghost = await env.bundle(['sleep', '1000']);
    const root = path.join(state, 'runtime', 'runc', 'default');
    await runc(['--root', root, 'create', '--bundle', ghost.bundle, 'ghost']);

    const svc = new MonitorTaskService({ stateDir: state });
    const tasks = await svc.recover(ctx);
    await assert.rejects(runc(['--root', root, 'state', 'ghost']), /does not exist/);
    const byId = new Map(tasks.map((t) => [t.id, t]));
    assert.deepEqual([...byId.keys()].sort(), ['frozen', 'quick', 'ticker', 'waiting']);
    assert.equal(byId.get('waiting')!.status, 'created');
    assert.equal(byId.get('frozen')!.status, 'paused');
    await svc.start(ctx, 'waiting');
    assert.equal((await svc.wait(ctx, 'waiting')).exitCode, 5);
    await svc.resume(ctx, 'frozen');
    assert.equal((await svc.state(ctx, 'frozen')).status, 'running');
    await svc.delete(ctx, 'frozen', { force: true });
    await svc.delete(ctx, 'waiting');
    assert.equal(byId.get('ticker')!.status, 'running');
    assert.equal(byId.get('quick')!.status, 'stopped');
    assert.equal(byId.get('quick')!.exit?.exitCode, 42);
    assert.equal((await svc.wait(ctx, 'quick')).exitCode, 42);
    assert.equal(existsSync(half), false, 'the half-created task is removed');
    assert.match(await readFile(path.join(logDir, 'quick.log'), 'utf8'), /Z stdout F bye\n$/);

    // The container process is the monitor's child, never Node's.
    const pid = byId.get('ticker')!.pid;
    assert.equal(await ppid(pid), mon);

    // Logs keep flowing and attach streams live output.
    const before = (await readFile(path.join(logDir, 'ticker.log'), 'utf8')).split('\n').length;
    await until(() => readFile(path.join(logDir, 'ticker.log'), 'utf8'), (t) => t.split('\n').length > before + 3, 'more log lines');
    const conn = await svc.attach(ctx, 'ticker');
    let live = '';
    conn.on('data', (d: Buffer) => (live += d.toString()));
    await until(() => live, (l) => /tick \d+/.test(l), 'live output on attach');
    conn.destroy();

    await svc.exec(ctx, 'ticker', 'x1', { args: ['sh', '-c', 'echo inside $$'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } });
    const ea = await svc.attach(ctx, 'ticker', 'x1');
    const eout = collect(ea);
    await svc.startExec(ctx, 'ticker', 'x1');
    assert.match((await eout).stdout, /^inside \d+\n$/);
    assert.equal((await svc.wait(ctx, 'ticker', 'x1')).exitCode, 0);

    const stats = await svc.stats(ctx, 'ticker');
    assert.ok(stats.pids.current >= 1);

    await svc.kill(ctx, 'ticker', 'SIGKILL');
    assert.equal((await svc.wait(ctx, 'ticker')).exitCode, 137);
    await svc.delete(ctx, 'ticker');
    await svc.delete(ctx, 'quick');
    assert.deepEqual(await svc.list(ctx), []);
  });
});
