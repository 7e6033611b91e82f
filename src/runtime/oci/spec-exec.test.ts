import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../../core/errors.ts';
import { DEFAULT_CAPABILITIES } from './caps.ts';
import { buildSpec } from './spec.ts';
import { buildExecProcess } from './spec-exec.ts';

const spec = buildSpec({
  image: { Env: ['PATH=/bin', 'A=image'], Cmd: ['sleep', '1000'], WorkingDir: '/srv' },
  config: { image: 'x', tty: true, noNewPrivileges: true, ulimits: [{ name: 'nofile', soft: 100, hard: 200 }] },
  user: { uid: 0, gid: 0 },
  rootfs: '/r',
  host: { hostname: 'h', cgroupsPath: '/berth/x' },
});

describe('buildExecProcess', () => {
  it('copies the container process and replaces args, env, cwd and terminal', () => {
    const p = buildExecProcess(spec, { cmd: ['ps', 'aux'], env: ['A=exec', 'B=2'] });
    assert.deepEqual(p.args, ['ps', 'aux']);
    assert.deepEqual(p.env, ['PATH=/bin', 'HOSTNAME=h', 'A=exec', 'B=2']);
    assert.equal(p.cwd, '/srv');
    assert.equal(p.terminal, false);
    assert.equal(p.noNewPrivileges, true);
    assert.deepEqual(p.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }]);
    assert.deepEqual(p.capabilities?.effective, [...DEFAULT_CAPABILITIES]);
  });
  it('sets TERM with a tty and takes its own working dir', () => {
    const p = buildExecProcess(spec, { cmd: ['sh'], tty: true, workingDir: '/tmp' });
    assert.ok(p.env.includes('TERM=xterm'));
    assert.equal(p.terminal, true);
    assert.equal(p.cwd, '/tmp');
    assert.throws(() => buildExecProcess(spec, { cmd: ['sh'], workingDir: 'tmp' }), isInvalidArgument);
  });
  it('runs as another user with the bounding set only', () => {
    const p = buildExecProcess(spec, { cmd: ['id'], user: { uid: 1000, gid: 1000, additionalGids: [29] } });
    assert.deepEqual(p.user, { uid: 1000, gid: 1000, additionalGids: [29] });
    assert.deepEqual(p.capabilities, { bounding: [...DEFAULT_CAPABILITIES] });
  });
  it('gives all capabilities when privileged', () => {
    const p = buildExecProcess(spec, { cmd: ['id'], privileged: true });
    assert.equal(p.capabilities?.effective?.length, 41);
  });
  it('refuses an empty command and leaves the spec untouched', () => {
    assert.throws(() => buildExecProcess(spec, { cmd: [] }), isInvalidArgument);
    buildExecProcess(spec, { cmd: ['x'] }).rlimits?.push({ type: 'RLIMIT_CORE', soft: 0, hard: 0 });
    assert.equal(spec.process.rlimits?.length, 1);
  });
});
