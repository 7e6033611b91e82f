import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSeccompProfile } from './seccomp-profile.ts';

describe('parseSeccompProfile', () => {
  it('reads the OCI format and docker\'s (archMap, name)', () => {
    assert.deepEqual(parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW"}', 'a.json'), { defaultAction: 'SCMP_ACT_ALLOW' });
    const docker = parseSeccompProfile(
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 1,
        archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
        syscalls: [{ name: 'read', action: 'SCMP_ACT_ALLOW' }, { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] }],
      }),
      'docker.json',
    );
    assert.deepEqual(docker, {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
      ],
    });
  });

  it('refuses what is not a profile, naming the file', () => {
    for (const [text, why] of [
      ['not json', /"p\.json": not JSON/],
      ['[]', /not a JSON object/],
      ['{"defaultAction":"ALLOW"}', /defaultAction/],
      ['{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}', /syscalls\[0\] names no system call/],
      ['{"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}}', /syscalls must be a list/],
    ] as const) {
      assert.throws(() => parseSeccompProfile(text, 'p.json'), (err: Error & { kind?: string }) => err.kind === 'InvalidArgument' && why.test(err.message));
    }
  });
});
