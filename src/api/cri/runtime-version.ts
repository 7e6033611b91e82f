import type { UnaryHandler } from './types.ts';

/** The CRI version this front door speaks (kubelet checks runtime_api_version). */
export const CRI_API_VERSION = 'v1';
/** The version field kubelet's own client reports; containerd and CRI-O answer this too. */
const KUBELET_API_VERSION = '0.1.0';

export const version: UnaryHandler<{ version?: string }, object> = async (_ctx, _req, deps) => ({
  version: KUBELET_API_VERSION,
  runtime_name: 'berth',
  runtime_version: deps.version,
  runtime_api_version: CRI_API_VERSION,
});
