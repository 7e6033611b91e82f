import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CAPABILITIES } from './caps.ts';
import type { Seccomp } from './oci-types.ts';
import { defaultSeccomp } from './seccomp-default.ts';

const allowed = (p: Seccomp, name: string) =>
  (p.syscalls ?? []).filter((s) => s.names.includes(name) && s.action === 'SCMP_ACT_ALLOW');

describe('defaultSeccomp', () => {
  const p = defaultSeccomp(DEFAULT_CAPABILITIES);
  it('fails what is not listed with EPERM, on x86_64 and its compat arches', () => {
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, 1);
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  });
  it('leaves x32 out, and nothing else, on a kernel that cannot run it', () => {
    const without = defaultSeccomp(DEFAULT_CAPABILITIES, { x32: false });
    assert.deepEqual(without.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    assert.deepEqual(without.syscalls, p.syscalls);
    assert.deepEqual(defaultSeccomp(DEFAULT_CAPABILITIES, { x32: true }).architectures, p.architectures);
  });
  it('allows the everyday syscalls and arch_prctl/modify_ldt on amd64', () => {
    for (const n of ['read', 'write', 'openat', 'execve', 'clone', 'futex', 'arch_prctl', 'modify_ldt', 'chroot', 'ptrace']) {
      assert.ok(allowed(p, n).length, n);
    }
    assert.equal(allowed(p, 'set_tls').length, 0);
    assert.equal(allowed(p, 's390_runtime_instr').length, 0);
  });
  it('keeps privileged syscalls out without their capability', () => {
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'reboot', 'init_module', 'bpf', 'kexec_load', 'open_by_handle_at', 'settimeofday', 'acct', 'syslog', 'keyctl', 'add_key', 'userfaultfd']) {
      assert.equal(allowed(p, n).length, 0, n);
    }
  });
  it('allows clone only without namespace flags, and makes clone3 ENOSYS, without CAP_SYS_ADMIN', () => {
    const clone = allowed(p, 'clone');
    assert.equal(clone.length, 1);
    assert.deepEqual(clone[0].args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
    const clone3 = (p.syscalls ?? []).find((s) => s.names.includes('clone3'));
    assert.equal(clone3?.action, 'SCMP_ACT_ERRNO');
    assert.equal(clone3?.errnoRet, 38);
  });
  it('allows personality only for the harmless personas', () => {
    const values = allowed(p, 'personality').map((s) => s.args?.[0].value);
    assert.deepEqual(values, [0, 8, 0x20000, 0x20008, 0xffffffff]);
  });
  it('refuses AF_VSOCK sockets', () => {
    assert.deepEqual(allowed(p, 'socket')[0].args, [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }]);
  });
  it('opens the cap-gated syscalls with the capability', () => {
    const admin = defaultSeccomp([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_TIME', 'CAP_SYS_PTRACE']);
    for (const n of ['mount', 'unshare', 'setns', 'clone3', 'settimeofday', 'kcmp']) assert.ok(allowed(admin, n).length, n);
    const clone = allowed(admin, 'clone');
    assert.equal(clone.length, 1);
    assert.equal(clone[0].args, undefined);
    assert.ok(!(admin.syscalls ?? []).some((s) => s.action === 'SCMP_ACT_ERRNO'));
  });
  it('drops chroot with CAP_SYS_CHROOT dropped, and ptrace on kernels before 4.8', () => {
    const caps = DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_SYS_CHROOT');
    assert.equal(allowed(defaultSeccomp(caps), 'chroot').length, 0);
    assert.equal(allowed(defaultSeccomp(DEFAULT_CAPABILITIES, { kernel: [4, 4] }), 'ptrace').length, 0);
  });
  it('resolves other arches', () => {
    const arm = defaultSeccomp(DEFAULT_CAPABILITIES, { arch: 'arm64' });
    assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    assert.ok(allowed(arm, 'set_tls').length);
    assert.equal(allowed(arm, 'arch_prctl').length, 0);
    const s390 = defaultSeccomp(DEFAULT_CAPABILITIES, { arch: 's390x' });
    assert.equal(allowed(s390, 'clone')[0].args?.[0].index, 1);
  });
  it('returns a fresh object each time', () => {
    const a = defaultSeccomp(DEFAULT_CAPABILITIES);
    a.syscalls?.[0].names.push('kexec_load');
    assert.equal(allowed(defaultSeccomp(DEFAULT_CAPABILITIES), 'kexec_load').length, 0);
  });
});
