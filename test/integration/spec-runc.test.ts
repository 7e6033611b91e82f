import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ContainerConfig } from '../../src/core/containers.ts';
import { DEFAULT_CAPABILITIES, capabilitiesFromMask, capabilityMask } from '../../src/runtime/oci/caps.ts';
import type { HostFacts } from '../../src/runtime/oci/spec.ts';
import { buildSpec } from '../../src/runtime/oci/spec.ts';
import { rootCtx } from '../../src/core/context.ts';
import { resolveUserInRootfs } from '../../src/runtime/oci/rootfs-files.ts';
import { defaultInitPath } from '../../src/runtime/tasks/monitor.ts';
import { removeCgroupParent } from '../helpers/leak-probe.ts';

/**
 * The spec builder against the real runtime: a busybox rootfs, config.json
 * from buildSpec, `runc run`, and what the container sees of itself.
 */
const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync('/bin/busybox') ? 'needs /bin/busybox' : spawnSync('runc', ['--version']).status !== 0 ? 'needs runc' : false;

const APPLETS = ['sh', 'touch', 'chroot', 'cat', 'grep', 'awk', 'id', 'wc', 'sleep', 'env', 'pwd', 'echo', 'hostname', 'unshare', 'true', 'head'];

describe('OCI spec run by runc', { skip }, () => {
  let dir: string;
  let runcRoot: string;
  const cgroupParent = `berth-test-${randomBytes(4).toString('hex')}`;
  const started: string[] = [];

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-spec-'));
    runcRoot = path.join(dir, 'runc');
  });

  after(async () => {
    for (const id of started) spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id]);
    // Every hierarchy, the unified one included: runc makes the parent in each.
    await removeCgroupParent(cgroupParent);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function bundle(id: string, config: Partial<ContainerConfig>, script: string, extraHost: Partial<HostFacts> = {}): Promise<string> {
    const b = path.join(dir, id);
    const rootfs = path.join(b, 'rootfs');
    for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc', 'work']) mkdirSync(path.join(rootfs, d), { recursive: true });
    copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
    for (const a of APPLETS) symlinkSync('busybox', path.join(rootfs, 'bin', a));
    const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/work:/bin/sh\n';
    const group = 'root:x:0:\naudio:x:29:app\napp:x:1000:\n';
    writeFileSync(path.join(rootfs, 'etc/passwd'), passwd);
    writeFileSync(path.join(rootfs, 'etc/group'), group);
    const capBnd = /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
    const [maj, min] = os.release().split('.').map(Number);
    const spec = buildSpec({
      image: { Env: ['PATH=/bin', 'FROM_IMAGE=1'], Cmd: ['/bin/sh', '-c', script] },
      config: { image: 'busybox', ...config },
      user: await resolveUserInRootfs(rootCtx(), rootfs, config.user, config.groupAdd),
      rootfs,
      host: {
        hostname: id.slice(0, 12),
        cgroupsPath: `/${cgroupParent}/${id}`,
        rlimitHard: { nofile: 20000 },
        capabilities: capabilitiesFromMask(capBnd),
        kernel: [maj, min],
        ...extraHost,
      },
    });
    writeFileSync(path.join(b, 'config.json'), JSON.stringify(spec, null, 2));
    return b;
  }

  /** Runs the container until it prints READY (then `onReady` looks from the host) and exits. */
  async function run(id: string, b: string, onReady?: () => void): Promise<{ code: number | null; out: string; err: string }> {
    started.push(id);
    const child = spawn('runc', ['--root', runcRoot, 'run', '-b', b, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let ready = false;
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      if (!ready && out.includes('READY')) {
        ready = true;
        try {
          onReady?.();
        } finally {
          spawnSync('runc', ['--root', runcRoot, 'kill', id, 'KILL']);
        }
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id]);
    return { code, out, err };
  }

  const field = (out: string, key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(out)?.[1];

  it('confines a root container as Docker does', async () => {
    const id = `spec-root-${randomBytes(4).toString('hex')}`;
    const script = [
      'grep -E "^(CapEff|CapPrm|CapBnd|CapInh|Seccomp|NoNewPrivs):" /proc/self/status | awk \'{print $1 "=" $2}\'',
      // /proc/kcore is absent on some kernels; these two exist and are non-empty on the host
      'echo masked=$(cat /proc/interrupts /proc/timer_list | wc -c)',
      'echo procsys=$(awk \'$2=="/proc/sys"{print $4}\' /proc/mounts | head -n1)',
      'echo sys=$(awk \'$2=="/sys"{print $4}\' /proc/mounts | head -n1)',
      'if unshare -U true 2>/dev/null; then echo userns=allowed; else echo userns=denied; fi',
      'echo memlimit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)',
      'echo pidsmax=$(cat /sys/fs/cgroup/pids/pids.max)',
      'echo uid=$(id -u) gid=$(id -g)',
      'echo host=$(hostname)',
      'echo READY',
      'sleep 60',
    ].join('\n');
    const b = await bundle(id, { resources: { memory: 64 * 1024 * 1024, pidsLimit: 42 } }, script);
    let hostMem = '';
    let hostPids = '';
    const r = await run(id, b, () => {
      hostMem = readFileSync(`/sys/fs/cgroup/memory/${cgroupParent}/${id}/memory.limit_in_bytes`, 'utf8').trim();
      hostPids = readFileSync(`/sys/fs/cgroup/pids/${cgroupParent}/${id}/pids.max`, 'utf8').trim();
    });
    const out = r.out.replace(/^(\w+):=/gm, '$1=');
    assert.ok(out.includes('READY'), `container output: ${r.out}\n${r.err}`);
    const mask = capabilityMask(DEFAULT_CAPABILITIES);
    assert.equal(field(out, 'CapEff'), mask);
    assert.equal(field(out, 'CapPrm'), mask);
    assert.equal(field(out, 'CapBnd'), mask);
    assert.equal(field(out, 'CapInh'), '0000000000000000');
    assert.equal(field(out, 'Seccomp'), '2');
    assert.equal(field(out, 'NoNewPrivs'), '0');
    assert.ok(readFileSync('/proc/interrupts', 'utf8').length > 0);
    assert.equal(field(out, 'masked'), '0', out);
    assert.match(field(out, 'procsys') ?? '', /^ro\b/);
    assert.match(field(out, 'sys') ?? '', /^ro\b/);
    assert.equal(field(out, 'userns'), 'denied');
    assert.equal(field(out, 'memlimit'), String(64 * 1024 * 1024));
    assert.equal(field(out, 'pidsmax'), '42');
    assert.match(out, /^uid=0 gid=0$/m);
    assert.equal(field(out, 'host'), id.slice(0, 12));
    assert.equal(hostMem, String(64 * 1024 * 1024));
    assert.equal(hostPids, '42');
  });

  it('runs a non-root user with its groups, cwd, env, rlimits and no-new-privileges', async () => {
    const id = `spec-user-${randomBytes(4).toString('hex')}`;
    const script = [
      'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status | awk \'{print $1 "=" $2}\'',
      'echo ids=$(id -u):$(id -g):$(id -G)',
      'echo cwd=$(pwd)',
      'echo env=$FROM_IMAGE:$FOO:$HOSTNAME',
      'echo nofile=$(ulimit -n):$(ulimit -Hn)',
      'echo READY',
    ].join('\n');
    const b = await bundle(id, {
      user: 'app',
      groupAdd: ['4242'],
      workingDir: '/work',
      env: ['FOO=bar'],
      hostname: 'svc',
      noNewPrivileges: true,
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
    }, script);
    const r = await run(id, b);
    const out = r.out.replace(/^(\w+):=/gm, '$1=');
    assert.ok(out.includes('READY'), `container output: ${r.out}\n${r.err}`);
    assert.equal(field(out, 'CapEff'), '0000000000000000');
    assert.equal(field(out, 'CapBnd'), capabilityMask(DEFAULT_CAPABILITIES));
    assert.equal(field(out, 'NoNewPrivs'), '1');
    assert.equal(field(out, 'Seccomp'), '2');
    assert.equal(field(out, 'ids'), '1000:1000:1000 29 4242');
    assert.equal(field(out, 'cwd'), '/work');
    assert.equal(field(out, 'env'), '1:bar:svc');
    assert.equal(field(out, 'nofile'), '1024:2048');
  });

  it('privileged: every capability berthd holds, no seccomp, nothing masked', async () => {
    const id = `spec-priv-${randomBytes(4).toString('hex')}`;
    const script = [
      'grep -E "^(CapEff|Seccomp):" /proc/self/status | awk \'{print $1 "=" $2}\'',
      'echo masked=$(cat /proc/interrupts | wc -c)',
      'echo sys=$(awk \'$2=="/sys"{print $4}\' /proc/mounts | head -n1)',
      'echo READY',
    ].join('\n');
    const r = await run(id, await bundle(id, { privileged: true }, script));
    const out = r.out.replace(/^(\w+):=/gm, '$1=');
    assert.ok(out.includes('READY'), `container output: ${r.out}\n${r.err}`);
    const hostBnd = /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    assert.equal(field(out, 'CapEff'), hostBnd);
    assert.equal(field(out, 'Seccomp'), '0');
    assert.notEqual(field(out, 'masked'), '0');
    assert.match(field(out, 'sys') ?? '', /^rw\b/);
  });

  it('cap-drop ALL with one cap added, and a read-only root', async () => {
    const id = `spec-caps-${randomBytes(4).toString('hex')}`;
    const script = [
      'grep -E "^CapEff:" /proc/self/status | awk \'{print $1 "=" $2}\'',
      'if touch /written 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi',
      'if chroot / true 2>/dev/null; then echo chroot=ok; else echo chroot=denied; fi',
      'echo READY',
    ].join('\n');
    const r = await run(id, await bundle(id, { capDrop: ['ALL'], capAdd: ['chown'], readOnlyRootfs: true }, script));
    const out = r.out.replace(/^(\w+):=/gm, '$1=');
    assert.ok(out.includes('READY'), `container output: ${r.out}\n${r.err}`);
    assert.equal(field(out, 'CapEff'), capabilityMask(['CAP_CHOWN']));
    assert.equal(field(out, 'rootfs'), 'ro');
    // no CAP_SYS_CHROOT: the capability check and the seccomp rule both refuse chroot
    assert.equal(field(out, 'chroot'), 'denied');
  });

  // berth's own init, as a daemon uses it by default; the spec starts it as `docker-init -- CMD`.
  it('--init runs the command under the init as pid 1', { skip: existsSync(defaultInitPath) ? false : 'needs native/build/berth-init (scripts/setup.sh)' }, async () => {
    const id = `spec-init-${randomBytes(4).toString('hex')}`;
    const script = 'echo pid=$$; echo init=$(cat /proc/1/cmdline | head -c 17); echo READY';
    const r = await run(id, await bundle(id, { init: true }, script, { initPath: defaultInitPath }));
    assert.ok(r.out.includes('READY'), `container output: ${r.out}\n${r.err}`);
    assert.notEqual(field(r.out, 'pid'), '1');
    assert.equal(field(r.out, 'init'), '/sbin/docker-init');
  });

  it('leaves no cgroup behind after delete', () => {
    for (const id of started) {
      assert.ok(!existsSync(`/sys/fs/cgroup/memory/${cgroupParent}/${id}`), id);
    }
  });
});
