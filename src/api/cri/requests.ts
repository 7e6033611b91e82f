import { t, type Schema } from '../../core/schema.ts';

/**
 * The CRI requests' schemas, checked by the server before a handler runs,
 * keyed by RPC name: a request that breaks one answers INVALID_ARGUMENT
 * naming the field (`config.hostname: is longer than 64 characters`).
 * Protobuf decoding already fixes every field's type; what is left to
 * check here is ranges, lengths and required values. A new RPC adds its
 * entry here.
 */

/** Linux's HOST_NAME_MAX: sethostname(2) refuses more. */
const HOSTNAME_MAX = 64;

const podSandboxConfig = t.object({
  metadata: t.object({ name: t.string({ minLength: 1, maxLength: 253 }), uid: t.string({ maxLength: 253 }), namespace: t.string({ maxLength: 253 }) }),
  hostname: t.string({ maxLength: HOSTNAME_MAX }),
  port_mappings: t.array(t.object({ container_port: t.int({ min: 0, max: 65535 }), host_port: t.int({ min: 0, max: 65535 }) })),
});

export const CRI_REQUEST_SCHEMAS: Readonly<Record<string, Schema>> = {
  RunPodSandbox: t.object({ config: podSandboxConfig }),
  PullImage: t.object({ image: t.object({ image: t.string({ maxLength: 4096 }) }) }),
};
