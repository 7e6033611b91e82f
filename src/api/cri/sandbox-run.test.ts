import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sandboxRequest, type RunPodSandboxRequest } from './sandbox-run.ts';

const metadata = { name: 'web', uid: 'u1', namespace: 'default', attempt: 2 };
const req = (config: Omit<NonNullable<RunPodSandboxRequest['config']>, 'metadata'>): RunPodSandboxRequest => ({ config: { metadata, ...config } });
const invalid = (r: RunPodSandboxRequest, message: RegExp) =>
  assert.throws(() => sandboxRequest(r), (err: Error & { kind?: string }) => err.kind === 'InvalidArgument' && message.test(err.message));

describe('RunPodSandbox request', () => {
  it('translates the whole config as kubelet sends it', () => {
    const r = sandboxRequest(
      req({
        hostname: 'web-0',
        log_directory: '/var/log/pods/default_web_u1',
        port_mappings: [
          { protocol: 'TCP', container_port: 80, host_port: 8080, host_ip: '127.0.0.1' },
          { protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '' },
          { protocol: 'TCP', container_port: 9090, host_port: 0 },
        ],
        linux: {
          cgroup_parent: '/kubepods/besteffort/podu1',
          sysctls: { 'net.ipv4.ip_forward': '1' },
          overhead: { cpu_shares: '0', memory_limit_in_bytes: '0' },
          resources: { cpu_period: '100000', cpu_quota: '-1', memory_limit_in_bytes: '1048576', hugepage_limits: [{ page_size: '2MB', limit: '0' }] },
          security_context: {
            namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD', userns_options: { mode: 'NODE' } },
            run_as_user: { value: '1000' },
            run_as_group: { value: '0' },
            supplemental_groups: ['5', '6'],
            privileged: true,
            seccomp: { profile_type: 'Localhost', localhost_ref: '/var/lib/kubelet/seccomp/p.json' },
          },
        },
      }),
    );
    assert.deepEqual(r.ports, [
      { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostIp: undefined, hostPort: 5353, containerPort: 53, protocol: 'udp' },
    ]);
    assert.deepEqual(r.namespaces, { network: 'node', pid: 'pod', ipc: 'pod' });
    assert.equal(r.runAsUser, 1000);
    assert.equal(r.runAsGroup, 0);
    assert.deepEqual(r.supplementalGroups, [5, 6]);
    assert.equal(r.privileged, true);
    assert.deepEqual(r.seccomp, { type: 'localhost', path: '/var/lib/kubelet/seccomp/p.json' });
    assert.equal(r.overhead, undefined, 'all zero: nothing declared');
    assert.deepEqual(r.resources, { cpuPeriod: 100000, cpuQuota: -1, memoryLimitInBytes: 1048576, hugepageLimits: [{ pageSize: '2MB', limit: 0 }] });
    assert.equal(r.logDirectory, '/var/log/pods/default_web_u1');
    assert.equal(r.cgroupParent, '/kubepods/besteffort/podu1');
    assert.equal(r.attempt, 2);
  });

  it('reads the deprecated seccomp_profile_path when seccomp is absent', () => {
    const path = (p: string) => sandboxRequest(req({ linux: { security_context: { seccomp_profile_path: p } } })).seccomp;
    assert.deepEqual(path('runtime/default'), { type: 'runtime/default' });
    assert.deepEqual(path('docker/default'), { type: 'runtime/default' });
    assert.deepEqual(path('unconfined'), { type: 'unconfined' });
    assert.deepEqual(path('localhost//etc/p.json'), { type: 'localhost', path: '/etc/p.json' });
    assert.equal(path(''), undefined);
    assert.deepEqual(sandboxRequest(req({ linux: { security_context: { seccomp: { profile_type: 'Unconfined' }, seccomp_profile_path: 'runtime/default' } } })).seccomp, { type: 'unconfined' });
  });

  it('refuses bad fields, naming them', () => {
    invalid({ config: {} }, /must include metadata/);
    invalid({ ...req({}), runtime_handler: 'kata' }, /kata/);
    invalid(req({ port_mappings: [{ protocol: 'SCTP', container_port: 1, host_port: 2 }] }), /port_mappings\[0\]: protocol SCTP/);
    invalid(req({ port_mappings: [{ container_port: 1, host_port: 2 }, { container_port: 70000, host_port: 3 }] }), /port_mappings\[1\]: container_port/);
    invalid(req({ port_mappings: [{ container_port: 1, host_port: 2, host_ip: 'localhost' }] }), /host_ip "localhost"/);
    invalid(req({ linux: { security_context: { namespace_options: { pid: 'TARGET' } } } }), /TARGET/);
    invalid(req({ linux: { security_context: { namespace_options: { userns_options: { mode: 'POD' } } } } }), /userns_options/);
    invalid(req({ linux: { security_context: { supplemental_groups: ['1', '-3'] } } }), /supplemental_groups\[1\]/);
    invalid(req({ linux: { security_context: { seccomp: { profile_type: 'Localhost' } } } }), /localhost_ref/);
    invalid(req({ linux: { security_context: { seccomp_profile_path: 'localhost/' } } }), /seccomp_profile_path/);
    invalid(req({ linux: { overhead: { cpu_shares: '-1' } } }), /linux\.overhead\.cpu_shares/);
    invalid(req({ linux: { resources: { cpu_quota: '-2' } } }), /linux\.resources\.cpu_quota/);
  });
});
