import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../core/errors.ts';
import { parseFlags } from './flags.ts';
import type { RunOptionsEnv } from './run-options.ts';
import { CREATE_FLAGS, RUN_FLAGS, toContainerConfig } from './run-options.ts';

const files: Record<string, string> = {
  '/w/app.env': '# app\nDB=postgres\nHOME_DIR\nSECRET\n',
  '/w/labels': 'team=infra\nowner\n',
  '/w/seccomp.json': '{"defaultAction":"SCMP_ACT_ALLOW"}',
  '/w/bad.json': '{nope',
};
const env: RunOptionsEnv = {
  vars: { HOME_DIR: '/home/me', TOKEN: 't0k' },
  cwd: '/w',
  readFile(file) {
    if (!(file in files)) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
    return files[file];
  },
};
const run = (...argv: string[]) => toContainerConfig(parseFlags(argv, RUN_FLAGS, { stopAtPositional: true }), env);
const cfg = (...argv: string[]) => run(...argv).config;
const fails = (re: RegExp, ...argv: string[]) =>
  assert.throws(() => run(...argv), (e) => isInvalidArgument(e) && re.test((e as Error).message), argv.join(' '));

describe('toContainerConfig basics', () => {
  it('takes the image and the command after it, flags after the image belong to the command', () => {
    assert.deepEqual(cfg('busybox'), { image: 'busybox' });
    assert.deepEqual(cfg('-t', 'busybox', 'sh', '-c', 'echo -e hi'), { image: 'busybox', cmd: ['sh', '-c', 'echo -e hi'], tty: true });
  });
  it('needs an image', () => {
    fails(/"berth run" requires at least 1 argument/);
    assert.throws(() => toContainerConfig(parseFlags([], CREATE_FLAGS), env, 'create'), /"berth create" requires/);
  });
  it('reads -d -i -t --rm --init --read-only --privileged', () => {
    const r = run('-dit', '--rm', '--init', '--read-only', '--privileged', 'img');
    assert.equal(r.detach, true);
    assert.deepEqual(r.config, { image: 'img', tty: true, openStdin: true, init: true, readOnlyRootfs: true, privileged: true, autoRemove: true });
    assert.equal(cfg('-i', 'img').stdinOnce, true);
    assert.equal(toContainerConfig(parseFlags(['-i', 'img'], CREATE_FLAGS), env, 'create').config.stdinOnce, undefined);
  });
  it('create has no --detach', () => {
    assert.throws(() => parseFlags(['-d', 'img'], CREATE_FLAGS), isInvalidArgument);
  });
  it('validates the name', () => {
    assert.equal(cfg('--name', 'web-1', 'img').name, 'web-1');
    assert.equal(cfg('--name', '/web', 'img').name, 'web');
    fails(/Invalid container name \(a b\)/, '--name', 'a b', 'img');
    fails(/Invalid container name/, '--name', 'x', 'img');
  });
});

describe('environment and labels', () => {
  it('merges env files then -e, taking bare keys from the CLI environment', () => {
    assert.deepEqual(cfg('--env-file', 'app.env', '-e', 'A=1', '-e', 'TOKEN', '-e', 'UNSET', '--env=B=x=y', 'img').env, [
      'DB=postgres', 'HOME_DIR=/home/me', 'A=1', 'TOKEN=t0k', 'B=x=y',
    ]);
  });
  it('refuses an empty name and a missing file', () => {
    fails(/invalid environment variable: =x/, '-e', '=x', 'img');
    fails(/open nope.env: no such file or directory/, '--env-file', 'nope.env', 'img');
  });
  it('reads labels from files and flags', () => {
    assert.deepEqual(cfg('--label-file', '/w/labels', '-l', 'a=b', '--label', 'flag', '-l', 'team=web', 'img').labels, { team: 'web', owner: '', a: 'b', flag: '' });
  });
});

describe('process flags', () => {
  it('reads -w -u --group-add --entrypoint --hostname --domainname', () => {
    const c = cfg('-w', '/srv', '-u', 'app:staff', '--group-add', 'audio', '--entrypoint', '/bin/sh', '-h', 'box', '--domainname', 'example.org', 'img');
    assert.deepEqual(c, { image: 'img', workingDir: '/srv', user: 'app:staff', groupAdd: ['audio'], entrypoint: ['/bin/sh'], hostname: 'box', domainname: 'example.org' });
  });
  it('an empty --entrypoint clears it; a relative workdir is refused', () => {
    assert.deepEqual(cfg('--entrypoint', '', 'img', 'id').entrypoint, []);
    assert.deepEqual(cfg('--entrypoint=', 'img').entrypoint, []);
    fails(/needs to be an absolute path/, '-w', 'rel', 'img');
  });
  it('keeps capability names for the engine to validate', () => {
    const c = cfg('--cap-add', 'NET_ADMIN', '--cap-add=sys_time', '--cap-drop', 'ALL', 'img');
    assert.deepEqual([c.capAdd, c.capDrop], [['NET_ADMIN', 'sys_time'], ['ALL']]);
  });
  it('reads --security-opt', () => {
    assert.equal(cfg('--security-opt', 'seccomp=unconfined', 'img').seccompProfile, 'unconfined');
    assert.equal(cfg('--security-opt', 'seccomp=seccomp.json', 'img').seccompProfile, '{"defaultAction":"SCMP_ACT_ALLOW"}');
    assert.equal(cfg('--security-opt', 'no-new-privileges', 'img').noNewPrivileges, true);
    assert.equal(cfg('--security-opt', 'no-new-privileges=true', 'img').noNewPrivileges, true);
    assert.equal(cfg('--security-opt', 'no-new-privileges:true', 'img').noNewPrivileges, true);
    assert.equal(cfg('--security-opt', 'no-new-privileges=false', 'img').noNewPrivileges, false);
    const r = run('--security-opt', 'apparmor=unconfined', '--security-opt', 'label=disable', 'img');
    assert.equal(r.warnings.length, 2);
    assert.deepEqual(r.config, { image: 'img' });
    fails(/opening seccomp profile \(missing.json\) failed/, '--security-opt', 'seccomp=missing.json', 'img');
    fails(/not valid JSON/, '--security-opt', 'seccomp=bad.json', 'img');
    fails(/Invalid --security-opt: "bogus=1"/, '--security-opt', 'bogus=1', 'img');
    fails(/invalid --security-opt/, '--security-opt', 'no-new-privileges=maybe', 'img');
  });
  it('reads --stop-signal and --stop-timeout', () => {
    const c = cfg('--stop-signal', 'SIGQUIT', '--stop-timeout', '30', 'img');
    assert.deepEqual([c.stopSignal, c.stopTimeout], ['SIGQUIT', 30]);
    assert.equal(cfg('--stop-signal', '9', 'img').stopSignal, '9');
    fails(/Invalid signal: SIG\$/, '--stop-signal', 'SIG$', 'img');
    fails(/invalid argument "soon" for "--stop-timeout" flag/, '--stop-timeout', 'soon', 'img');
  });
});

describe('mounts', () => {
  it('collects -v and --mount in order, and --tmpfs', () => {
    const c = cfg('-v', '/h:/c:ro', '-v', 'data:/d', '--mount', 'type=tmpfs,target=/t', '--tmpfs', '/run', '--tmpfs', '/cache:size=10m,exec', 'img');
    assert.deepEqual(c.mounts, [
      { type: 'bind', source: '/h', target: '/c', readOnly: true },
      { type: 'volume', source: 'data', target: '/d' },
      { type: 'tmpfs', target: '/t' },
    ]);
    assert.deepEqual(c.tmpfs, { '/run': '', '/cache': 'size=10m,exec' });
  });
  it('names the flag in errors', () => {
    fails(/^invalid argument "\/a:rel" for "-v, --volume" flag: invalid volume specification/, '-v', '/a:rel', 'img');
    fails(/^invalid argument "type=bind" for "--mount" flag: target is required/, '--mount', 'type=bind', 'img');
    fails(/invalid argument "rel" for "--tmpfs" flag/, '--tmpfs', 'rel', 'img');
  });
});

describe('resources', () => {
  it('reads memory, swap, cpus, shares, cpuset, pids, shm and ulimits', () => {
    const c = cfg('-m', '64m', '--memory-swap', '-1', '--cpus', '1.5', '-c', '512', '--cpuset-cpus', '0-1', '--pids-limit', '100',
      '--shm-size', '128m', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=50', '--ulimit', 'nofile=10:20', 'img');
    assert.deepEqual(c.resources, { memory: 64 << 20, memorySwap: -1, nanoCpus: 1.5e9, cpuShares: 512, cpusetCpus: '0-1', pidsLimit: 100 });
    assert.equal(c.shmSize, 128 << 20);
    assert.deepEqual(c.ulimits, [{ name: 'nofile', soft: 10, hard: 20 }, { name: 'nproc', soft: 50, hard: 50 }]);
    assert.deepEqual(cfg('--memory=1g', '--memory-swap', '2g', '--cpu-period', '50000', '--cpu-quota', '25000', 'img').resources, {
      memory: 1 << 30, memorySwap: 2 * 1024 ** 3, cpuPeriod: 50000, cpuQuota: 25000,
    });
  });
  it('gives docker messages for bad values', () => {
    fails(/^invalid argument "x" for "-m, --memory" flag: invalid size: 'x'$/, '-m', 'x', 'img');
    fails(/^invalid argument "lots" for "--memory-swap" flag: invalid size/, '--memory-swap', 'lots', 'img');
    fails(/^invalid argument "two" for "--cpus" flag: failed to parse two as a rational number$/, '--cpus', 'two', 'img');
    fails(/^invalid argument "x" for "-c, --cpu-shares" flag/, '--cpu-shares', 'x', 'img');
    fails(/invalid argument "a-b" for "--cpuset-cpus" flag/, '--cpuset-cpus', 'a-b', 'img');
    fails(/for "--pids-limit" flag/, '--pids-limit', 'many', 'img');
    fails(/for "--shm-size" flag: invalid size/, '--shm-size', 'big', 'img');
    fails(/SHM size must be greater than 0/, '--shm-size', '0', 'img');
    fails(/for "--ulimit" flag: invalid ulimit type: bogus/, '--ulimit', 'bogus=1', 'img');
    fails(/Conflicting options: Nano CPUs and CPU Period/, '--cpus', '1', '--cpu-period', '1000', 'img');
  });
});

describe('restart and logging', () => {
  it('reads --restart', () => {
    assert.deepEqual(cfg('--restart', 'on-failure:5', 'img').restartPolicy, { name: 'on-failure', maximumRetryCount: 5 });
    assert.deepEqual(cfg('--restart', 'always', 'img').restartPolicy, { name: 'always' });
    assert.equal(cfg('--restart', 'no', '--rm', 'img').restartPolicy, undefined);
    fails(/for "--restart" flag: invalid restart policy 'maybe'/, '--restart', 'maybe', 'img');
    fails(/Conflicting options: --restart and --rm/, '--restart', 'always', '--rm', 'img');
  });
  it('reads the log driver and its options', () => {
    const c = cfg('--log-driver', 'json-file', '--log-opt', 'max-size=10m', '--log-opt', 'max-file=3', 'img');
    assert.deepEqual([c.logDriver, c.logOpts], ['json-file', { maxSize: 10 << 20, maxFiles: 3 }]);
    assert.equal(cfg('--log-driver', 'cri', 'img').logDriver, 'cri');
    fails(/no log driver named 'syslog'/, '--log-driver', 'syslog', 'img');
    fails(/unknown log opt 'compress'/, '--log-opt', 'compress=true', 'img');
    fails(/max-file cannot be less than 1/, '--log-opt', 'max-file=0', 'img');
    fails(/key value pair/, '--log-opt', 'max-size', 'img');
  });
  it('reads --runtime, --pull and --platform', () => {
    const r = run('--runtime', 'crun', '--pull', 'always', '--platform', 'linux/amd64', 'img');
    assert.deepEqual([r.config.runtime, r.pull, r.platform], ['crun', 'always', 'linux/amd64']);
    assert.equal(run('img').pull, 'missing');
    fails(/invalid pull option: 'sometimes'/, '--pull', 'sometimes', 'img');
    fails(/platform "linux\/arm64" is not supported/, '--platform', 'linux/arm64', 'img');
  });
});

describe('network', () => {
  it('leaves the network unset without network flags', () => {
    assert.equal(cfg('img').network, undefined);
  });
  it('reads ports, aliases, dns and hosts', () => {
    const c = cfg('-p', '8080:80', '-p', '127.0.0.1::53/udp', '-P', '--network', 'front', '--network-alias', 'web', '--dns', '10.0.0.53',
      '--dns-search', 'corp', '--dns-option', 'ndots:2', '--add-host', 'db:10.0.0.2', 'img');
    assert.deepEqual(c.network, {
      mode: 'front',
      aliases: ['web'],
      ports: [{ hostIp: undefined, hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostIp: '127.0.0.1', hostPort: 0, containerPort: 53, protocol: 'udp' }],
      publishAll: true,
      dns: ['10.0.0.53'],
      dnsSearch: ['corp'],
      dnsOptions: ['ndots:2'],
      extraHosts: ['db:10.0.0.2'],
    });
    assert.deepEqual(cfg('-p', '80', 'img').network, { mode: 'bridge', ports: [{ hostIp: undefined, hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    assert.deepEqual(cfg('--net', 'host', 'img').network, { mode: 'host' });
    assert.deepEqual(cfg('--network', 'container:db', 'img').network, { mode: 'container:db' });
  });
  it('refuses bad values', () => {
    fails(/invalid published port "80:x"/, '-p', '80:x', 'img');
    fails(/^invalid argument "dns.example" for "--dns" flag: dns.example is not an ip address$/, '--dns', 'dns.example', 'img');
    fails(/for "--add-host" flag: bad format for add-host/, '--add-host', 'nohost', 'img');
    fails(/port publishing and the host network mode/, '--network', 'host', '-p', '80:80', 'img');
    fails(/no container given/, '--network', 'container:', 'img');
  });
});

describe('namespace modes', () => {
  it('reads --pid, --ipc and --uts as docker does', () => {
    assert.deepEqual(cfg('--pid', 'host', '--ipc', 'container:db', '--uts', 'host', 'img'), { image: 'img', pidMode: 'host', ipcMode: 'container:db', utsMode: 'host' });
    // private and shareable are the default: nothing to record.
    assert.deepEqual(cfg('--ipc', 'shareable', '--pid', 'container:x', 'img'), { image: 'img', pidMode: 'container:x' });
  });
  it('refuses unknown modes and a hostname with the host UTS namespace', () => {
    fails(/invalid PID mode: bogus/, '--pid', 'bogus', 'img');
    fails(/invalid PID mode: container:/, '--pid', 'container:', 'img');
    fails(/invalid UTS mode: container:x/, '--uts', 'container:x', 'img');
    fails(/invalid IPC mode: none/, '--ipc', 'none', 'img');
    fails(/Conflicting options: hostname and the UTS mode/, '--uts', 'host', '-h', 'n', 'img');
  });
});

describe('--device, --expose, --sysctl', () => {
  it('reads docker device specs', () => {
    assert.deepEqual(cfg('--device', '/dev/fuse', 'img').devices, [{ pathOnHost: '/dev/fuse', pathInContainer: '/dev/fuse', permissions: 'rwm' }]);
    assert.deepEqual(cfg('--device', '/dev/null:/dev/n', '--device', '/dev/zero:r', '--device', '/dev/a:/dev/b:rw', 'img').devices, [
      { pathOnHost: '/dev/null', pathInContainer: '/dev/n', permissions: 'rwm' },
      { pathOnHost: '/dev/zero', pathInContainer: '/dev/zero', permissions: 'r' },
      { pathOnHost: '/dev/a', pathInContainer: '/dev/b', permissions: 'rw' },
    ]);
    fails(/invalid argument "\/dev\/a:\/dev\/b:x" for "--device" flag: invalid device mode: x/, '--device', '/dev/a:/dev/b:x', 'img');
    fails(/device paths must be absolute/, '--device', 'dev/a', 'img');
  });
  it('reads exposed ports and ranges', () => {
    assert.deepEqual(cfg('--expose', '80', '--expose', '53/udp', '--expose', '7000-7002', '--expose', '80/tcp', 'img').exposedPorts, ['80/tcp', '53/udp', '7000/tcp', '7001/tcp', '7002/tcp']);
    fails(/invalid range format for --expose/, '--expose', '70000', 'img');
    fails(/invalid range format for --expose/, '--expose', '9-3', 'img');
  });
  it('reads --volumes-from as given', () => {
    assert.deepEqual(cfg('--volumes-from', 'db', '--volumes-from', 'cache:ro', 'img').volumesFrom, ['db', 'cache:ro']);
  });
  it('reads sysctls as KEY=VALUE', () => {
    assert.deepEqual(cfg('--sysctl', 'net.core.somaxconn=1024', '--sysctl', 'kernel.sem=1 2 3 4', 'img').sysctls, { 'net.core.somaxconn': '1024', 'kernel.sem': '1 2 3 4' });
    fails(/invalid sysctl "nope": expected KEY=VALUE/, '--sysctl', 'nope', 'img');
  });
});

describe('health check flags', () => {
  it('reads --health-* into the check, in nanoseconds', () => {
    assert.deepEqual(cfg('--health-cmd', 'curl -f localhost', '--health-interval', '1m30s', '--health-timeout', '500ms', '--health-retries', '5', '--health-start-period', '2s', 'img').healthcheck, {
      Test: ['CMD-SHELL', 'curl -f localhost'],
      Interval: 90e9,
      Timeout: 500e6,
      StartPeriod: 2e9,
      Retries: 5,
    });
    assert.deepEqual(cfg('--no-healthcheck', 'img').healthcheck, { Test: ['NONE'] });
  });
  it('refuses bad durations and --no-healthcheck with a check', () => {
    fails(/time: invalid duration "5x"/, '--health-interval', '5x', 'img');
    fails(/--health-timeout cannot be less than 1ms/, '--health-timeout', '10us', 'img');
    fails(/--no-healthcheck conflicts with --health-\* options/, '--no-healthcheck', '--health-cmd', 'x', 'img');
  });
});
