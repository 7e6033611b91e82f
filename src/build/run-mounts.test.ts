import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kindOf } from '../core/errors.ts';
import { parseDockerfile } from './dockerfile.ts';
import { parseRunMount } from './run-mounts.ts';

const ins = parseDockerfile('FROM scratch\nRUN true\n').stages[0].instructions[0];

test('bind, cache and tmpfs mounts with their defaults', () => {
  assert.deepEqual(parseRunMount(ins, 'target=/src'), { type: 'bind', target: '/src', source: '/' });
  assert.deepEqual(parseRunMount(ins, 'type=bind,from=build,source=/out,target=/in,ro'), { type: 'bind', target: '/in', source: '/out', from: 'build' });
  assert.deepEqual(parseRunMount(ins, 'type=cache,target=/root/.cache'), { type: 'cache', target: '/root/.cache', id: '/root/.cache', mode: 0o755, uid: 0, gid: 0, sharing: 'shared' });
  assert.deepEqual(parseRunMount(ins, 'type=cache,id=go,target=/c,mode=0700,uid=10,gid=20,sharing=locked'), { type: 'cache', target: '/c', id: 'go', mode: 0o700, uid: 10, gid: 20, sharing: 'locked' });
  assert.deepEqual(parseRunMount(ins, 'type=tmpfs,target=/t,size=64m'), { type: 'tmpfs', target: '/t', size: 64 << 20 });
});

test('what is refused, with the position and the mount', () => {
  const bad = (spec: string, re: RegExp) => assert.throws(() => parseRunMount(ins, spec), (e: Error) => kindOf(e) === 'InvalidArgument' && /^Dockerfile:2:1: RUN --mount=/.test(e.message) && re.test(e.message));
  bad('type=cache', /a target is required/);
  bad('target=rel', /must be an absolute path/);
  bad('type=secret,target=/s', /type "secret" is not supported/);
  bad('type=tmpfs,target=/t,uid=1', /unknown option "uid"/);
  bad('type=bind,target=/x,rw', /read-write bind mounts are not supported/);
  bad('type=cache,target=/c,mode=abc', /mode=abc is not a number/);
  bad('type=tmpfs,target=/t,size=lots', /size=lots is not a size/);
});
