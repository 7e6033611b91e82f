import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kindOf } from '../../core/errors.ts';
import { lastRuntimeMessage, lookPath, OciRuntime, runtimeError } from './runc.ts';
import { normaliseStats, processSignal, startFailureCode } from './tasks.ts';
import { rootCtx } from '../../core/context.ts';

test('lastRuntimeMessage reads logrus text and JSON lines', () => {
  assert.equal(lastRuntimeMessage('time="2026-01-01T00:00:00Z" level=error msg="container does not exist"\n'), 'container does not exist');
  assert.equal(lastRuntimeMessage('time="x" level=error msg="exec: \\"x\\": not found"'), 'exec: "x": not found');
  assert.equal(lastRuntimeMessage('{"level":"warning","msg":"w"}\n{"level":"error","msg":"boom","time":"t"}\n'), 'boom');
  assert.equal(lastRuntimeMessage('plain failure\n'), 'plain failure');
});

test('runtimeError maps runc messages to kinds and names the container', () => {
  const cases: Array<[string, string]> = [
    ['container does not exist', 'NotFound'],
    ['container with id exists: web already exists', 'AlreadyExists'],
    ['cannot start an already running container', 'Conflict'],
    ['cannot delete container web that is not stopped: running', 'Conflict'],
    ['container not running', 'Conflict'],
    ['container not paused', 'Conflict'],
    ['something else broke', 'Unknown'],
  ];
  for (const [msg, kind] of cases) {
    const err = runtimeError('runc', 'web', 'kill', `time="t" level=error msg="${msg}"\n`);
    assert.equal(kindOf(err), kind, msg);
    assert.match(err.message, /^container "web": runc kill: /);
  }
});

test('the runtime root is per name and namespace under the state dir', () => {
  const rt = new OciRuntime({ name: 'crun', stateDir: '/run/berth' });
  assert.equal(rt.path, lookPath('crun'));
  assert.equal(rt.root('k8s.io'), '/run/berth/runtime/crun/k8s.io');
});

test('a missing runtime binary is FailedPrecondition', async () => {
  const rt = new OciRuntime({ name: 'nope', path: '/nonexistent/runtime', stateDir: '/tmp' });
  await assert.rejects(rt.state(rootCtx(), 'x'), (err: unknown) => kindOf(err) === 'FailedPrecondition');
});

test('normaliseStats reduces cgroup v1 data and hides the no-limit value', () => {
  const s = normaliseStats({
    cpu: { usage: { total: 10, percpu: [4, 6], user: 3, kernel: 7 }, throttling: { throttled_periods: 1, throttled_time: 2 } },
    memory: { cache: 5, usage: { usage: 100, limit: 9223372036854771712, max: 120, failcnt: 0 }, raw: { total_rss: 50 } },
    pids: { current: 2, limit: 0 },
    blkio: { ioServiceBytesRecursive: [{ major: 8, minor: 0, op: 'Read', value: 7 }, { major: 8, minor: 0, op: 'Write', value: 9 }] },
  });
  assert.equal(s.cpu.totalNs, 10);
  assert.deepEqual(s.cpu.perCpuNs, [4, 6]);
  assert.equal(s.memory.limit, 0);
  assert.equal(s.memory.rss, 50);
  assert.deepEqual(s.blkio, { readBytes: 7, writeBytes: 9 });
  assert.equal(normaliseStats({}).memory.usage, 0);
});

test('startFailureCode finds the exit code along the cause chain', () => {
  const inner = Object.assign(new Error('x'), { exitCode: 127 });
  assert.equal(startFailureCode(new Error('outer', { cause: inner })), 127);
  assert.equal(startFailureCode(new Error('none')), undefined);
});

test('runtime config: runtimes by name, the default must be one of them', async () => {
  const { resolveSection } = await import('../../core/config.ts');
  const { runtimeConfig, runtimeSection } = await import('./task-config.ts');
  const cfg = runtimeConfig(resolveSection(runtimeSection, {}));
  assert.equal(cfg.defaultRuntime, 'runc');
  assert.deepEqual(cfg.runtimes, { runc: 'runc', crun: 'crun' });
  assert.match(cfg.monitorPath, /native\/build\/berth-monitor$/);
  const custom = runtimeConfig(resolveSection(runtimeSection, { runtimes: ['runc=/usr/sbin/runc', 'youki'], default_runtime: 'youki' }));
  assert.deepEqual(custom.runtimes, { runc: '/usr/sbin/runc', youki: 'youki' });
  assert.throws(() => runtimeConfig(resolveSection(runtimeSection, { default_runtime: 'kata' })), (err: unknown) => kindOf(err) === 'InvalidArgument');
});

test('processSignal accepts numbers, bare and SIG-prefixed names', () => {
  assert.equal(processSignal(9), 9);
  assert.equal(processSignal('15'), 15);
  assert.equal(processSignal('hup'), 'SIGHUP');
  assert.equal(processSignal('SIGTERM'), 'SIGTERM');
  assert.throws(() => processSignal('NOPE'), (err: unknown) => kindOf(err) === 'InvalidArgument');
});

test('lookPath finds a binary in PATH once, and leaves paths and unknown names alone', () => {
  assert.equal(lookPath('sh', '/nonexistent:relative:/bin'), '/bin/sh');
  assert.equal(lookPath('/custom/runc', '/bin'), '/custom/runc');
  assert.equal(lookPath('no-such-runtime-here', '/bin:/usr/bin'), 'no-such-runtime-here');
  // A directory of that name is not an executable.
  assert.equal(lookPath('bin', '/usr:/'), 'bin');
});
