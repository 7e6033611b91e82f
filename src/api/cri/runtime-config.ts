import { isIP } from 'node:net';
import { berthError } from '../../core/errors.ts';
import type { UnaryHandler } from './types.ts';

/**
 * RuntimeConfig: the cgroup driver kubelet must match. berth drives runc
 * with cgroupfs paths (runtime.cgroup_parent), never systemd's slices, so
 * the answer is CGROUPFS, and kubelet 1.28+ with KubeletCgroupDriverFromCRI
 * picks it without being told.
 */
export const runtimeConfig: UnaryHandler<object, object> = async () => ({ linux: { cgroup_driver: 'CGROUPFS' } });

/**
 * UpdateRuntimeConfig: kubelet passes the node's pod CIDR once it knows it
 * (a comma-separated list on dual-stack nodes). containerd keeps it and, if
 * it has a CNI config template, writes a config from it; berth's pods take
 * their addresses from their berth network's subnet, so the CIDR is kept
 * (shown by a verbose Status) and nothing else changes. An empty CIDR
 * changes nothing; a malformed one is INVALID_ARGUMENT naming the field.
 */
export const updateRuntimeConfig: UnaryHandler<{ runtime_config?: { network_config?: { pod_cidr?: string } | null } | null }, object> = async (ctx, req, deps) => {
  const cidr = req.runtime_config?.network_config?.pod_cidr ?? '';
  if (!cidr) return {};
  const cidrs = cidr.split(',').map((c) => c.trim());
  for (const c of cidrs) {
    if (!isCidr(c)) throw berthError('InvalidArgument', `runtime_config.network_config.pod_cidr: "${c}" is not a CIDR (address/prefix length)`);
  }
  if (cidrs.join(',') !== deps.runtimeState.podCidrs.join(',')) ctx.log.info('pod CIDR from kubelet', { podCidr: cidrs.join(',') });
  deps.runtimeState.podCidrs = cidrs;
  return {};
};

function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
