import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerConfig } from '../../core/containers.ts';
import { isInvalidArgument, kindOf } from '../../core/errors.ts';
import { DEFAULT_CAPABILITIES } from './caps.ts';
import type { ImageConfig } from './oci-types.ts';
import type { HostFacts, SpecInput } from './spec.ts';
import { DEFAULT_PATH, MASKED_PATHS, READONLY_PATHS, buildSpec, mergeEnv, processArgs } from './spec.ts';

const image: ImageConfig = {
  Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C.UTF-8'],
  Entrypoint: ['/docker-entrypoint.sh'],
  Cmd: ['nginx', '-g', 'daemon off;'],
  WorkingDir: '/srv',
};
const host: HostFacts = { hostname: 'abcdef012345', cgroupsPath: '/berth/abc', rlimitHard: { nofile: 20000 } };
const build = (config: Partial<ContainerConfig> = {}, more: Partial<SpecInput> = {}) =>
  buildSpec({ image, config: { image: 'nginx', ...config }, user: { uid: 0, gid: 0 }, rootfs: '/r', host, ...more });

describe('processArgs', () => {
  it('joins the image entrypoint and cmd', () => {
    assert.deepEqual(processArgs(image, { image: 'x' }), ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
  });
  it('replaces the cmd with the given one', () => {
    assert.deepEqual(processArgs(image, { image: 'x', cmd: ['sh'] }), ['/docker-entrypoint.sh', 'sh']);
  });
  it('an entrypoint override drops the image cmd unless a cmd is given', () => {
    assert.deepEqual(processArgs(image, { image: 'x', entrypoint: ['/bin/sh'] }), ['/bin/sh']);
    assert.deepEqual(processArgs(image, { image: 'x', entrypoint: ['/bin/sh'], cmd: ['-c', 'id'] }), ['/bin/sh', '-c', 'id']);
    assert.deepEqual(processArgs(image, { image: 'x', entrypoint: [], cmd: ['id'] }), ['id']);
    assert.deepEqual(processArgs(image, { image: 'x', entrypoint: [''], cmd: ['id'] }), ['id']);
  });
  it('refuses an empty command', () => {
    assert.throws(() => processArgs({}, { image: 'x' }), (e) => isInvalidArgument(e) && /no command specified/.test((e as Error).message));
    assert.throws(() => processArgs(image, { image: 'x', entrypoint: [] }), isInvalidArgument);
  });
});

describe('mergeEnv', () => {
  it('replaces by key, appends new keys and unsets bare keys', () => {
    assert.deepEqual(mergeEnv(['A=1', 'B=2', 'C=3'], ['B=x', 'D=4', 'C', 'E']), ['A=1', 'B=x', 'D=4']);
  });
});

describe('buildSpec process', () => {
  it('merges env as docker: PATH and HOSTNAME defaults, image env, then user env', () => {
    const s = build({ env: ['LANG=en', 'FOO=bar'] });
    assert.deepEqual(s.process.env, ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOSTNAME=abcdef012345', 'LANG=en', 'FOO=bar']);
    const bare = buildSpec({ image: { Cmd: ['sh'] }, config: { image: 'x', tty: true, hostname: 'web' }, user: { uid: 0, gid: 0 }, rootfs: '/r', host });
    assert.deepEqual(bare.process.env, [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=web', 'TERM=xterm']);
    assert.equal(bare.process.terminal, true);
    assert.equal(bare.hostname, 'web');
  });
  it('uses the working dir of the config, then the image, then /', () => {
    assert.equal(build().process.cwd, '/srv');
    assert.equal(build({ workingDir: '/tmp' }).process.cwd, '/tmp');
    assert.equal(buildSpec({ image: { Cmd: ['sh'] }, config: { image: 'x' }, user: { uid: 0, gid: 0 }, rootfs: '/r', host }).process.cwd, '/');
    assert.throws(() => build({ workingDir: 'rel' }), isInvalidArgument);
  });
  it('sets the user with additional gids', () => {
    const s = build({}, { user: { uid: 1000, gid: 1000, additionalGids: [4, 29] } });
    assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [4, 29] });
  });
  it('gives root the default capabilities in bounding, effective and permitted, none inheritable', () => {
    const caps = build().process.capabilities;
    assert.deepEqual(caps?.bounding, [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(caps?.effective, [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(caps?.permitted, [...DEFAULT_CAPABILITIES]);
    assert.equal(caps?.inheritable, undefined);
    assert.equal(caps?.ambient, undefined);
  });
  it('gives a non-root user only the bounding set', () => {
    const caps = build({}, { user: { uid: 1, gid: 1 } }).process.capabilities;
    assert.deepEqual(caps, { bounding: [...DEFAULT_CAPABILITIES] });
  });
  it('applies cap-add and cap-drop, and refuses unknown ones', () => {
    const caps = build({ capAdd: ['net_admin'], capDrop: ['MKNOD'] }).process.capabilities?.effective ?? [];
    assert.ok(caps.includes('CAP_NET_ADMIN') && !caps.includes('CAP_MKNOD'));
    assert.throws(() => build({ capAdd: ['nope'] }), isInvalidArgument);
  });
  it('sets no rlimits and no oomScoreAdj by default, noNewPrivileges only when asked', () => {
    const s = build();
    assert.equal(s.process.rlimits, undefined);
    assert.equal(s.process.oomScoreAdj, undefined);
    assert.equal(s.process.noNewPrivileges, undefined);
    assert.equal(build({ noNewPrivileges: true }).process.noNewPrivileges, true);
  });
  it('maps ulimits and refuses one above the host hard limit', () => {
    assert.deepEqual(build({ ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'nproc', soft: 100, hard: 100 }] }).process.rlimits, [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
      { type: 'RLIMIT_NPROC', soft: 100, hard: 100 },
    ]);
    assert.throws(() => build({ ulimits: [{ name: 'nofile', soft: 1024, hard: 30000 }] }), (e) => isInvalidArgument(e) && /20000/.test((e as Error).message));
    assert.throws(() => build({ ulimits: [{ name: 'nofile', soft: 3000, hard: 2000 }] }), isInvalidArgument);
    assert.throws(() => build({ ulimits: [{ name: 'nofile', soft: 1024, hard: -1 }] }), (e) => isInvalidArgument(e) && /unlimited exceeds/.test((e as Error).message));
    assert.deepEqual(build({ ulimits: [{ name: 'core', soft: -1, hard: -1 }] }).process.rlimits, [{ type: 'RLIMIT_CORE', soft: Number.MAX_SAFE_INTEGER, hard: Number.MAX_SAFE_INTEGER }]);
    assert.throws(() => build({ ulimits: [{ name: 'bogus', soft: 1, hard: 1 }] }), isInvalidArgument);
  });
  it('wraps the command in the init when asked', () => {
    const s = build({ init: true, cmd: ['sleep', '1'] }, { host: { ...host, initPath: '/usr/bin/catatonit' } });
    assert.deepEqual(s.process.args, ['/sbin/docker-init', '--', '/docker-entrypoint.sh', 'sleep', '1']);
    assert.deepEqual(s.mounts.find((m) => m.destination === '/sbin/docker-init'), {
      destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/catatonit', options: ['rbind', 'rprivate', 'ro'],
    });
    assert.equal(kindOf(catchErr(() => build({ init: true }))), 'FailedPrecondition');
  });
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('buildSpec mounts', () => {
  it('has the standard mounts with a 64m /dev/shm', () => {
    const s = build();
    assert.deepEqual(s.mounts.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']);
    assert.ok(s.mounts.find((m) => m.destination === '/dev/shm')?.options?.includes('size=65536k'));
    assert.ok(s.mounts.find((m) => m.destination === '/sys')?.options?.includes('ro'));
    assert.equal(s.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.type, 'cgroup');
    assert.ok(build({ shmSize: 128 * 1024 * 1024 }).mounts.find((m) => m.destination === '/dev/shm')?.options?.includes('size=131072k'));
  });
  it('binds the /etc files the caller wrote', () => {
    const s = build({}, { etcFiles: { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' } });
    const etc = s.mounts.filter((m) => m.destination.startsWith('/etc/'));
    assert.deepEqual(etc.map((m) => [m.destination, m.source]), [['/etc/resolv.conf', '/c/resolv.conf'], ['/etc/hostname', '/c/hostname'], ['/etc/hosts', '/c/hosts']]);
  });
  it('adds binds, volumes and tmpfs sorted parents first, overriding standard ones', () => {
    const s = build({ tmpfs: { '/run': 'size=10m,exec' } }, {
      mounts: [
        { type: 'bind', source: '/host/sub', target: '/data/sub', readOnly: true },
        { type: 'bind', source: '/vol/data', target: '/data/' },
        { type: 'tmpfs', target: '/dev/shm', options: ['size=1g'] },
        { type: 'bind', source: '/host/x', target: '/x', options: ['rshared', 'z'] },
      ],
    });
    const dests = s.mounts.map((m) => m.destination);
    assert.equal(dests.filter((d) => d === '/dev/shm').length, 1);
    assert.ok(dests.indexOf('/data') < dests.indexOf('/data/sub'));
    assert.deepEqual(s.mounts.find((m) => m.destination === '/data/sub'), { destination: '/data/sub', type: 'bind', source: '/host/sub', options: ['rbind', 'rprivate', 'ro'] });
    assert.deepEqual(s.mounts.find((m) => m.destination === '/x')?.options, ['rbind', 'rshared', 'rw']);
    assert.deepEqual(s.mounts.find((m) => m.destination === '/run'), { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=10m', 'exec'] });
    assert.deepEqual(s.mounts.find((m) => m.destination === '/dev/shm')?.options, ['nosuid', 'nodev', 'size=1g']);
  });
  it('refuses relative and duplicate mount points', () => {
    assert.throws(() => build({}, { mounts: [{ type: 'bind', source: '/a', target: 'rel' }] }), isInvalidArgument);
    assert.throws(() => build({}, { mounts: [{ type: 'bind', source: '/a', target: '/a' }, { type: 'tmpfs', target: '/a/' }] }), isInvalidArgument);
  });
  it('makes the root read-only when asked', () => {
    assert.equal(build().root.readonly, undefined);
    assert.deepEqual(build({ readOnlyRootfs: true }).root, { path: '/r', readonly: true });
  });
});

describe('buildSpec linux', () => {
  it('creates mount, network, uts, pid and ipc namespaces, no cgroup namespace', () => {
    assert.deepEqual(build().linux.namespaces, [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }]);
  });
  it('joins given namespaces and shares the host network', () => {
    const s = build({}, { host: { ...host, namespacePaths: { network: '/run/netns/x' } } });
    assert.deepEqual(s.linux.namespaces[1], { type: 'network', path: '/run/netns/x' });
    assert.ok(!build({ network: { mode: 'host' } }).linux.namespaces.some((n) => n.type === 'network'));
    const hostUts = build({}, { host: { ...host, hostNamespaces: ['uts'] } });
    assert.equal(hostUts.hostname, undefined);
  });
  it('masks and write-protects the Docker paths', () => {
    const s = build();
    assert.deepEqual(s.linux.maskedPaths, [...MASKED_PATHS]);
    assert.ok(s.linux.maskedPaths?.includes('/proc/kcore'));
    assert.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    assert.deepEqual(s.linux.readonlyPaths, [...READONLY_PATHS]);
  });
  it('denies all devices but the standard ones', () => {
    const d = build().linux.resources?.devices ?? [];
    assert.deepEqual(d[0], { allow: false, access: 'rwm' });
    for (const [maj, min] of [[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2]]) {
      assert.ok(d.some((r) => r.allow && r.type === 'c' && r.major === maj && r.minor === min && r.access === 'rwm'), `${maj}:${min}`);
    }
    assert.ok(d.some((r) => r.allow && r.type === 'c' && r.major === 136 && r.minor === undefined));
    assert.deepEqual(d.at(-1), { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' });
  });
  it('sets the cgroups path, no sysctls, and the default seccomp profile', () => {
    const s = build();
    assert.equal(s.linux.cgroupsPath, '/berth/abc');
    assert.equal(s.linux.sysctl, undefined);
    assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(s.annotations, undefined);
    assert.equal(build({ seccompProfile: 'unconfined' }).linux.seccomp, undefined);
    const custom = { defaultAction: 'SCMP_ACT_ALLOW' as const };
    assert.equal(build({ seccompProfile: '/p.json' }, { host: { ...host, seccompProfile: custom } }).linux.seccomp, custom);
    assert.throws(() => build({ seccompProfile: '/p.json' }), isInvalidArgument);
  });
  it('opens the seccomp profile for added capabilities', () => {
    const s = build({ capAdd: ['SYS_ADMIN'] });
    assert.ok(s.linux.seccomp?.syscalls?.some((c) => c.names.includes('mount') && c.action === 'SCMP_ACT_ALLOW'));
  });
  it('privileged: all caps, no seccomp, no masked paths, all devices, rw /sys', () => {
    const devices = [{ type: 'c', path: '/dev/kvm', major: 10, minor: 232 }];
    const s = build({ privileged: true }, { host: { ...host, devices } });
    assert.equal(s.process.capabilities?.bounding?.length, 41);
    assert.equal(s.linux.seccomp, undefined);
    assert.equal(s.linux.maskedPaths, undefined);
    assert.equal(s.linux.readonlyPaths, undefined);
    assert.deepEqual(s.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
    assert.deepEqual(s.linux.devices, devices);
    assert.ok(s.mounts.find((m) => m.destination === '/sys')?.options?.includes('rw'));
  });
  it('maps resources as docker', () => {
    const r = build({ resources: { memory: 64 << 20, nanoCpus: 1.5e9, cpuShares: 512, cpusetCpus: '0', pidsLimit: 50 } }).linux.resources;
    assert.deepEqual(r?.memory, { limit: 64 << 20 });
    assert.deepEqual(r?.cpu, { period: 100000, quota: 150000, shares: 512, cpus: '0' });
    assert.deepEqual(r?.pids, { limit: 50 });
    const swapHost = { host: { ...host, swapAccounting: true } };
    assert.deepEqual(build({ resources: { memory: 64 << 20 } }, swapHost).linux.resources?.memory, { limit: 64 << 20, swap: 128 << 20 });
    assert.deepEqual(build({ resources: { memory: 64 << 20, memorySwap: -1 } }, swapHost).linux.resources?.memory, { limit: 64 << 20, swap: -1 });
    assert.deepEqual(build({ resources: { memory: 64 << 20, memorySwap: 100 << 20 } }, swapHost).linux.resources?.memory, { limit: 64 << 20, swap: 100 << 20 });
    assert.throws(() => build({ resources: { memory: 64 << 20, memorySwap: 32 << 20 } }, swapHost), isInvalidArgument);
    assert.throws(() => build({ resources: { memorySwap: 32 << 20 } }), isInvalidArgument);
    assert.throws(() => build({ resources: { memory: 1024 } }), isInvalidArgument);
    assert.throws(() => build({ resources: { nanoCpus: 1e9, cpuQuota: 1000 } }), isInvalidArgument);
    assert.deepEqual(build({ resources: { cpuQuota: 50000, cpuPeriod: 200000 } }).linux.resources?.cpu, { period: 200000, quota: 50000 });
    assert.equal(build({ resources: { pidsLimit: -1 } }).linux.resources?.pids, undefined);
  });
  it('refuses CPUs the host does not have', () => {
    const two = { host: { ...host, cpuCount: 2 } };
    assert.deepEqual(build({ resources: { nanoCpus: 2e9, cpusetCpus: '0-1' } }, two).linux.resources?.cpu, { period: 100000, quota: 200000, cpus: '0-1' });
    assert.throws(() => build({ resources: { nanoCpus: 3e9 } }, two), (e) => isInvalidArgument(e) && /only 2 CPUs available/.test((e as Error).message));
    assert.throws(() => build({ resources: { cpusetCpus: '0,2' } }, two), (e) => isInvalidArgument(e) && /requested 0,2, available: 0-1/.test((e as Error).message));
    assert.throws(() => build({ resources: { cpusetCpus: '1-0' } }, two), isInvalidArgument);
  });
  it('carries annotations', () => {
    assert.deepEqual(build({ annotations: { a: 'b' } }).annotations, { a: 'b' });
  });
  it('produces JSON that round-trips', () => {
    const s = build({ tty: true, capAdd: ['ALL'] });
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });
});

describe('sysctls and devices', () => {
  it('sets namespaced sysctls and refuses the others', () => {
    assert.deepEqual(build({ sysctls: { 'net.core.somaxconn': '1024', 'kernel.shmmni': '100', 'fs.mqueue.msg_max': '20' } }).linux.sysctl, {
      'net.core.somaxconn': '1024',
      'kernel.shmmni': '100',
      'fs.mqueue.msg_max': '20',
    });
    assert.equal(build().linux.sysctl, undefined);
    assert.throws(() => build({ sysctls: { 'vm.swappiness': '1' } }), /"vm.swappiness" is not allowed/);
    assert.throws(() => build({ sysctls: { 'net.ipv4.ip_forward': '1' }, network: { mode: 'host' } }), /network namespace of its own/);
    assert.throws(() => build({ sysctls: { 'kernel.sem': '1 2 3 4' }, ipcMode: 'host' }), /IPC namespace of its own/);
    // The netns berth makes is joined by path and still the container's own.
    assert.ok(build({ sysctls: { 'net.core.somaxconn': '1' } }, { host: { ...host, namespacePaths: { network: '/run/berth/netns/x' } } }).linux.sysctl);
  });

  it('makes mapped devices and allows them in the device cgroup', () => {
    const dev = { type: 'c', path: '/dev/mynull', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0, access: 'rw' };
    const s = build({}, { host: { ...host, mappedDevices: [dev] } });
    assert.deepEqual(s.linux.devices, [{ type: 'c', path: '/dev/mynull', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }]);
    assert.deepEqual(s.linux.resources?.devices?.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
    assert.ok(s.linux.maskedPaths?.length, 'still masked');
    const p = build({ privileged: true }, { host: { ...host, devices: [], mappedDevices: [dev] } });
    assert.equal(p.linux.devices?.[0].path, '/dev/mynull');
  });
});

describe('pieces a CRI container asks for', () => {
  it('replaces the masked and read-only paths when given', () => {
    const spec = build({ maskedPaths: ['/proc/version'], readonlyPaths: [] });
    assert.deepEqual(spec.linux.maskedPaths, ['/proc/version']);
    assert.deepEqual(spec.linux.readonlyPaths, []);
    assert.deepEqual(build().linux.maskedPaths, [...MASKED_PATHS]);
  });
  it('never sets an oom_score_adj below berthd\'s own', () => {
    assert.equal(build({ oomScoreAdj: -998 }, { host: { ...host, oomScoreAdj: -500 } }).process.oomScoreAdj, -500);
    assert.equal(build({ oomScoreAdj: 1000 }, { host: { ...host, oomScoreAdj: -500 } }).process.oomScoreAdj, 1000);
    assert.equal(build().process.oomScoreAdj, undefined);
  });
  it('keeps hugepage limits and cpuset mems, and drops the limits on a host without the hugetlb controller', () => {
    const resources = { hugepageLimits: [{ pageSize: '2MB', limit: 0 }], cpusetMems: '0' };
    assert.deepEqual(build({ resources }).linux.resources?.hugepageLimits, [{ pageSize: '2MB', limit: 0 }]);
    assert.equal(build({ resources }).linux.resources?.cpu?.mems, '0');
    assert.equal(build({ resources }, { host: { ...host, hugetlb: false } }).linux.resources?.hugepageLimits, undefined);
    assert.throws(() => build({ resources: { hugepageLimits: [{ pageSize: 'huge', limit: 1 }] } }), isInvalidArgument);
  });
  it('makes the root rshared when asked', () => {
    assert.equal(build({}, { host: { ...host, rootfsPropagation: 'rshared' } }).linux.rootfsPropagation, 'rshared');
    assert.equal(build().linux.rootfsPropagation, undefined);
  });
});
