import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument, isNotFound } from '../../core/errors.ts';
import type { SandboxInfo } from '../../runtime/sandboxes/sandbox-types.ts';
import { containerName, resourcesOf, toContainerConfig } from './container-config.ts';

const sandbox = {
  id: 'sb1',
  name: 'web',
  uid: 'u1',
  podNamespace: 'default',
  pausePid: 42,
  namespaces: { network: 'pod', pid: 'container', ipc: 'pod' },
} as unknown as SandboxInfo;
const cfg = (more: object = {}) => ({ metadata: { name: 'app', attempt: 1 }, image: { image: 'sha256:abc' }, ...more });
const convert = (more: object = {}, sandboxConfig: object = {}, targetPid?: number) => toContainerConfig(cfg(more), sandbox, sandboxConfig, targetPid);

describe('CRI ContainerConfig to berth ContainerConfig', () => {
  it('command replaces the entrypoint and args the cmd; args alone keep the entrypoint', () => {
    assert.deepEqual([convert({ command: ['sh'], args: ['-c', 'id'] }).entrypoint, convert({ command: ['sh'], args: ['-c', 'id'] }).cmd], [['sh'], ['-c', 'id']]);
    assert.deepEqual([convert({ command: ['sh'] }).entrypoint, convert({ command: ['sh'] }).cmd], [['sh'], []]);
    assert.deepEqual([convert({ args: ['x'] }).entrypoint, convert({ args: ['x'] }).cmd], [undefined, ['x']]);
    assert.deepEqual([convert().entrypoint, convert().cmd], [undefined, undefined]);
  });

  it('names the container as kubelet does and joins the pod', () => {
    const c = convert({ envs: [{ key: 'A', value: 'b' }], labels: { l: '1' }, annotations: { a: '2' }, tty: true, stdin: true, stdin_once: true });
    assert.equal(c.name, 'k8s_app_web_default_u1_1');
    assert.deepEqual(c.env, ['A=b']);
    assert.deepEqual([c.labels, c.annotations, c.tty, c.openStdin, c.stdinOnce], [{ l: '1' }, { a: '2' }, true, true, true]);
    assert.deepEqual(c.pod, { sandboxId: 'sb1', pausePid: 42, hostNetwork: false, pid: 'pod', ipc: 'pod', name: 'app', attempt: 1 });
    assert.deepEqual(c.restartPolicy, { name: 'no' });
    assert.equal(containerName('a b', 0, sandbox), undefined, 'a name berth cannot hold gets a generated one');
  });

  it('maps the namespace options; TARGET needs the target process', () => {
    const ns = (o: object, target?: number) => convert({ linux: { security_context: { namespace_options: o } } }, {}, target).pod;
    assert.deepEqual([ns({ pid: 'CONTAINER' })?.pid, ns({ pid: 'NODE', ipc: 'NODE' })?.pid, ns({ pid: 'NODE', ipc: 'NODE' })?.ipc], ['container', 'node', 'node']);
    assert.equal(ns({ pid: 'TARGET', target_id: 'c2' }, 77)?.targetPid, 77);
    assert.throws(() => ns({ pid: 'TARGET', target_id: 'c2' }), isNotFound);
  });

  it('puts the log in the sandbox log directory, in the CRI format, never rotated', () => {
    const c = convert({ log_path: 'app/1.log' }, { log_directory: '/var/log/pods/x' });
    assert.deepEqual([c.logDriver, c.logPath, c.logOpts], ['cri', '/var/log/pods/x/app/1.log', { maxSize: 0, maxFiles: 1 }]);
    assert.equal(convert({ log_path: 'app/1.log' }).logPath, undefined, 'no log directory: no CRI log path');
    assert.throws(() => convert({ log_path: '../../../etc/x' }, { log_directory: '/var/log/pods/x' }), isInvalidArgument);
  });

  it('maps users, groups and the security context', () => {
    const sc = (o: object, sb: object = {}) => convert({ linux: { security_context: o } }, sb);
    assert.equal(sc({ run_as_user: { value: '1000' }, run_as_group: { value: '2000' } }).user, '1000:2000');
    assert.equal(sc({ run_as_username: 'app' }).user, 'app');
    assert.deepEqual(sc({ supplemental_groups: ['3000'] }).groupAdd, ['3000']);
    assert.throws(() => sc({ run_as_group: { value: '5' } }), isInvalidArgument);
    const c = sc({ readonly_rootfs: true, no_new_privs: true, capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['ALL'] }, masked_paths: ['/x'], readonly_paths: ['/y'] });
    assert.deepEqual([c.readOnlyRootfs, c.noNewPrivileges, c.capAdd, c.capDrop, c.maskedPaths, c.readonlyPaths], [true, true, ['NET_ADMIN'], ['ALL'], ['/x'], ['/y']]);
    assert.equal(sc({}).maskedPaths, undefined, 'no list: the defaults');
    assert.throws(() => sc({ privileged: true }), isInvalidArgument, 'privileged only in a privileged sandbox');
    assert.equal(sc({ privileged: true }, { linux: { security_context: { privileged: true } } }).privileged, true);
  });

  it('maps seccomp as containerd: none is unconfined, RuntimeDefault the default profile, Localhost a file', () => {
    const sc = (o: object) => convert({ linux: { security_context: o } }).seccompProfile;
    assert.equal(sc({}), 'unconfined');
    assert.equal(sc({ seccomp: { profile_type: 'Unconfined' } }), 'unconfined');
    assert.equal(sc({ seccomp: { profile_type: 'RuntimeDefault' } }), undefined);
    assert.equal(sc({ seccomp_profile_path: 'runtime/default' }), undefined);
    assert.equal(sc({ seccomp: { profile_type: 'Localhost', localhost_ref: '/etc/hostname' } }), '/etc/hostname');
    assert.equal(sc({ seccomp_profile_path: 'localhost//etc/hostname' }), '/etc/hostname');
    assert.throws(() => sc({ seccomp: { profile_type: 'Localhost', localhost_ref: '/nonexistent/p.json' } }), isNotFound);
    assert.throws(() => sc({ seccomp: { profile_type: 'Localhost', localhost_ref: 'relative.json' } }), isInvalidArgument);
    assert.throws(() => sc({ seccomp_profile_path: '/etc/hostname' }), isInvalidArgument, 'a path without localhost/');
  });

  it('maps mounts with their propagation, and refuses a missing host path', () => {
    const m = (o: object) => convert({ mounts: [{ container_path: '/data', host_path: '/tmp', ...o }] }).mounts?.[0];
    assert.deepEqual(m({ readonly: true }), { type: 'bind', source: '/tmp', target: '/data', readOnly: true, options: ['rprivate'] });
    assert.deepEqual(m({ propagation: 'PROPAGATION_HOST_TO_CONTAINER' })?.options, ['rslave']);
    assert.deepEqual(m({ propagation: 'PROPAGATION_BIDIRECTIONAL' })?.options, ['rshared']);
    assert.throws(() => convert({ mounts: [{ container_path: '/data', host_path: '/nonexistent/x' }] }), (e) => isInvalidArgument(e) && /mounts\[0\]\.host_path/.test((e as Error).message));
    assert.throws(() => convert({ mounts: [{ container_path: 'rel', host_path: '/tmp' }] }), isInvalidArgument);
  });

  it('maps resources: zero is unset, swap is the memory limit unless given', () => {
    assert.deepEqual(resourcesOf({ cpu_shares: '2', cpu_quota: '0', memory_limit_in_bytes: '1048576', oom_score_adj: '1000', cpuset_mems: '0' }), {
      resources: { cpuShares: 2, memory: 1048576, memorySwap: 1048576, cpusetMems: '0' },
      oomScoreAdj: 1000,
    });
    assert.equal(resourcesOf({ memory_limit_in_bytes: '100', memory_swap_limit_in_bytes: '300' }).resources?.memorySwap, 300);
    assert.deepEqual(resourcesOf(undefined), {});
  });

  it('refuses a config without a name or an image', () => {
    assert.throws(() => toContainerConfig({ image: { image: 'x' } }, sandbox, {}), isInvalidArgument);
    assert.throws(() => toContainerConfig({ metadata: { name: 'a' } }, sandbox, {}), isInvalidArgument);
  });
});
