/**
 * The RuntimeService methods of api.proto berth does not serve yet. Each
 * answers UNIMPLEMENTED naming itself, never a fake success, so kubelet and
 * crictl report the gap instead of acting on an empty answer. Every other
 * method of api.proto is served (the whole ImageService among them);
 * server.ts refuses to start if a method is neither served nor listed here.
 * docs/architecture.md ("The CRI front door") lists the same methods.
 */
export const UNSERVED_RUNTIME_METHODS: readonly string[] = [
  'CheckpointContainer',
];

export function unimplementedMessage(service: string, method: string): string {
  return `${service}/${method} is not implemented: berth does not serve this method of the CRI (see docs/architecture.md, "The CRI front door")`;
}
