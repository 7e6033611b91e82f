import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { busyboxImage } from '../helpers/image-builder.ts';
import { buildSecurityProbe, capLines } from '../helpers/security-probe.ts';

/**
 * The container side of the security defaults, through the real CLI and
 * daemon: what a process inside a container holds (capabilities, seccomp,
 * no_new_privs, masked and read-only paths) and what it is refused, compared
 * with what Docker gives. The probe binary makes raw syscalls and prints
 * "ok" or the errno name.
 */
const DEFAULT_CAPS = '00000000a80425fb';
const NONE = '0000000000000000';

describe('security: container defaults', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  const hostCaps = capLines(readFileSync('/proc/self/status', 'utf8')).CapBnd;
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-sec-'));
    const probe = await buildSecurityProbe(tmp);
    // berthd inherits this; no container may see it.
    process.env.BERTH_SECRET_TEST = 'daemon-only';
    e = await startEngine({
      imageSpec: busyboxImage([
        {
          files: [
            { path: 'bin/probe', source: probe, mode: 0o755 },
            // setuid-root copies: without no-new-privileges an unprivileged user gains euid 0 through them.
            { path: 'bin/suid-probe', source: probe, mode: 0o4755, uid: 0, gid: 0 },
            { path: 'bin/busybox-suid', source: '/bin/busybox', mode: 0o4755, uid: 0, gid: 0 },
            { path: 'mnt', type: 'dir' },
            { path: 'run', type: 'dir' },
          ],
        },
      ]),
    });
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const run = async (args: string[]) => {
    const r = await e.d.cli(['run', '--rm', ...args]);
    return r;
  };
  const status = async (flags: string[]) => {
    const r = await run([...flags, e.image, 'cat', '/proc/self/status']);
    assert.equal(r.code, 0, r.stderr);
    return { caps: capLines(r.stdout), text: r.stdout };
  };

  it("gives root Docker's 14 default capabilities, nothing inheritable or ambient", async () => {
    const { caps, text } = await status([]);
    assert.deepEqual(caps, { CapInh: NONE, CapPrm: DEFAULT_CAPS, CapEff: DEFAULT_CAPS, CapBnd: DEFAULT_CAPS, CapAmb: NONE });
    assert.match(text, /^Seccomp:\s+2$/m);
    assert.match(text, /^NoNewPrivs:\s+0$/m);
  });

  it('gives a non-root user no effective or permitted capabilities', async () => {
    const { caps } = await status(['-u', '1000']);
    assert.deepEqual(caps, { CapInh: NONE, CapPrm: NONE, CapEff: NONE, CapBnd: DEFAULT_CAPS, CapAmb: NONE });
  });

  it('--cap-add and --cap-drop change the set; ALL means what the daemon holds', async () => {
    assert.equal((await status(['--cap-add', 'NET_ADMIN'])).caps.CapEff, '00000000a80435fb');
    assert.equal((await status(['--cap-drop', 'chown'])).caps.CapEff, '00000000a80425fa');
    const none = (await status(['--cap-drop', 'ALL'])).caps;
    assert.deepEqual(none, { CapInh: NONE, CapPrm: NONE, CapEff: NONE, CapBnd: NONE, CapAmb: NONE });
    assert.equal((await status(['--cap-drop', 'ALL', '--cap-add', 'KILL'])).caps.CapBnd, '0000000000000020');
    assert.equal((await status(['--cap-add', 'ALL'])).caps.CapEff, hostCaps);
    const bad = await run(['--cap-add', 'NOT_A_CAP', e.image, 'true']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown capability: "CAP_NOT_A_CAP"/);
  });

  it('--privileged: all capabilities, host devices, no seccomp, writable /sys', async () => {
    const { caps, text } = await status(['--privileged']);
    assert.equal(caps.CapEff, hostCaps);
    assert.match(text, /^Seccomp:\s+0$/m);
    const r = await run(['--privileged', e.image, 'sh', '-c', 'ls /dev; grep " /sys " /proc/self/mountinfo; cat /proc/timer_list | wc -c']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^(loop0|sda|vda|nvme0n1|mem|kmsg)$/m, 'host devices are present');
    assert.match(r.stdout, / \/sys rw,/);
    assert.doesNotMatch(r.stdout, /^0$/m, '/proc/timer_list is not masked');
    const plain = await run([e.image, 'sh', '-c', 'ls /dev; grep " /sys " /proc/self/mountinfo']);
    assert.doesNotMatch(plain.stdout, /^(loop0|sda|vda|mem|kmsg)$/m, 'an unprivileged container sees only the standard devices');
    assert.match(plain.stdout, / \/sys ro,/);
  });

  it('refuses mount, block devices, module loading, hostname changes, user namespaces and keyctl', async () => {
    const probe = async (...args: string[]) => (await run([e.image, 'probe', ...args])).stdout.trim();
    assert.equal(await probe('mount', '/mnt'), 'EPERM');
    // runc allows mknod of any node (Docker's "b *:* m"); the device cgroup refuses to open it.
    const blk = await run([e.image, 'sh', '-c', 'probe mknod-block /tmp/loop; probe open /tmp/loop']);
    assert.match(blk.stdout.trim(), /^(EPERM|ok)\n(EPERM|EACCES)$/);
    assert.equal(await probe('init-module'), 'EPERM');
    const hostHostname = os.hostname();
    assert.equal(await probe('sethostname', 'berth-evil'), 'EPERM');
    assert.equal(os.hostname(), hostHostname);
    assert.equal(await probe('unshare-user'), 'EPERM');
    assert.equal(await probe('keyctl'), 'EPERM');
    // The host's processes do not exist in the container's pid namespace.
    assert.equal(await probe('ptrace', String(e.d.proc.pid)), 'ESRCH');
    const own = await run(['--cap-add', 'SYS_ADMIN', e.image, 'probe', 'sethostname', 'inside']);
    assert.equal(own.stdout.trim(), 'ok', 'SYS_ADMIN changes only the container uts namespace');
    assert.equal(os.hostname(), hostHostname);
  });

  it('sees only its own processes, cannot write /proc/sys and reads masked paths as empty', async () => {
    const r = await run([e.image, 'sh', '-c', [
      'ls /proc | grep -c "^[0-9]"',
      'echo 1 > /proc/sys/vm/drop_caches && echo wrote-proc-sys',
      'echo 1 > /proc/sysrq-trigger && echo wrote-sysrq',
      'for f in /proc/timer_list /proc/sched_debug /proc/keys /proc/kcore; do [ -e $f ] && echo "$f $(cat $f | wc -c)"; done',
      'ls /sys/firmware | wc -l',
      'readlink /proc/self/ns/user',
      'cat /proc/self/uid_map',
    ].join('; ')]);
    const lines = r.stdout.trim().split('\n');
    assert.ok(Number(lines[0]) <= 4, `pids visible: ${lines[0]}`);
    assert.doesNotMatch(r.stdout, /wrote-/);
    assert.match(r.stderr, /Read-only file system/);
    for (const l of lines.filter((x) => x.startsWith('/proc/'))) assert.match(l, / 0$/, `masked: ${l}`);
    assert.ok(lines.some((l) => l.startsWith('/proc/timer_list')));
    // No user namespace: same user ns as the host, identity uid map.
    assert.equal(lines.find((l) => l.startsWith('user:[')), readlinkSync('/proc/self/ns/user'));
    assert.match(r.stdout, /^\s*0\s+0\s+4294967295$/m);
  });

  it('--security-opt no-new-privileges blocks setuid gain; without it the setuid binary gains root', async () => {
    const plain = await run(['-u', '1000', e.image, 'suid-probe', 'euid']);
    assert.equal(plain.stdout.trim(), 'uid=1000 euid=0', plain.stderr);
    const nnp = await run(['-u', '1000', '--security-opt', 'no-new-privileges', e.image, 'sh', '-c', 'grep ^NoNewPrivs: /proc/self/status; suid-probe euid; busybox-suid id -u']);
    assert.equal(nnp.code, 0, nnp.stderr);
    assert.equal(nnp.stdout, 'NoNewPrivs:\t1\nuid=1000 euid=1000\n1000\n');
  });

  it('--security-opt seccomp=unconfined turns the filter off and keeps the capabilities', async () => {
    const { caps, text } = await status(['--security-opt', 'seccomp=unconfined']);
    assert.match(text, /^Seccomp:\s+0$/m);
    assert.equal(caps.CapEff, DEFAULT_CAPS);
    assert.equal(await run(['--security-opt', 'seccomp=unconfined', e.image, 'probe', 'keyctl']).then((r) => r.stdout.trim()), 'ok');
  });

  it('--security-opt seccomp=FILE applies that profile; a FIFO named as the profile is refused and berthd goes on', async () => {
    const profile = path.join(tmp, 'no-mkdir.json');
    writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
    const denied = await run(['--security-opt', `seccomp=${profile}`, e.image, 'mkdir', '/tmp/d']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Operation not permitted/);
    assert.equal((await run([e.image, 'mkdir', '/tmp/d'])).code, 0);
    const fifo = path.join(tmp, 'profile.fifo');
    execFileSync('mkfifo', [fifo]);
    const refused = await run(['--security-opt', `seccomp=${fifo}`, e.image, 'true']);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /not a regular file/);
    assert.equal((await e.d.cli(['version'])).code, 0);
  });

  it('--read-only: the rootfs refuses writes, /dev/shm and --tmpfs stay writable', async () => {
    const r = await run(['--read-only', '--tmpfs', '/run', e.image, 'sh', '-c', 'touch /x && echo wrote-root; touch /tmp/x && echo wrote-tmp; touch /dev/shm/x && echo shm; touch /run/x && echo run']);
    assert.equal(r.stdout, 'shm\nrun\n', r.stderr);
    assert.match(r.stderr, /Read-only file system/);
  });

  it("does not pass the daemon's environment into containers or execs", async () => {
    const r = await run(['-e', 'MINE=1', e.image, 'env']);
    assert.equal(r.code, 0, r.stderr);
    const names = r.stdout.trim().split('\n').map((l) => l.slice(0, l.indexOf('='))).sort();
    assert.deepEqual(names, ['HOME', 'HOSTNAME', 'MINE', 'PATH']);
    const d = await e.d.cli(['run', '-d', e.image, 'sleep', '30']);
    const id = d.stdout.trim();
    const x = await e.d.cli(['exec', id, 'env']);
    assert.doesNotMatch(x.stdout, /BERTH_SECRET|NODE_|npm_|SUDO_|SSH_/);
    assert.deepEqual(x.stdout.trim().split('\n').map((l) => l.slice(0, l.indexOf('='))).sort(), ['HOME', 'HOSTNAME', 'PATH']);
    await e.d.cli(['rm', '-f', id]);
  });
});
