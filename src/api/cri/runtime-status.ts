import type { Readiness, UnaryHandler } from './types.ts';

/**
 * Status: the two conditions kubelet requires before it marks the node
 * Ready. A condition that is not met carries a CamelCase reason and a
 * message naming what is missing, as containerd's NetworkPluginNotReady.
 */
export const status: UnaryHandler<{ verbose?: boolean }, object> = async (ctx, req, deps) => {
  const r = await deps.readiness(ctx);
  // Verbose: containerd's `config` key, with what berth has of it.
  const info = req.verbose ? { config: JSON.stringify({ cgroupDriver: 'cgroupfs', podCIDRs: deps.runtimeState.podCidrs }) } : {};
  return { status: { conditions: [condition('RuntimeReady', r.runtime), condition('NetworkReady', r.network)] }, info };
};

function condition(type: string, r: Readiness) {
  return { type, status: r.ready, reason: r.ready ? '' : (r.reason ?? 'NotReady'), message: r.ready ? '' : (r.message ?? '') };
}
