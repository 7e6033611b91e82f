/**
 * The upstream RuntimeService methods berth does not serve yet:
 * containers, streaming, stats, events and metrics. Each answers
 * UNIMPLEMENTED naming itself, never a fake success, so kubelet and crictl
 * report the gap instead of acting on an empty answer. (Every ImageService
 * method is served.)
 */
export const UNSERVED_RUNTIME_METHODS: readonly string[] = [
  'CreateContainer',
  'StartContainer',
  'StopContainer',
  'RemoveContainer',
  'ListContainers',
  'ContainerStatus',
  'UpdateContainerResources',
  'ReopenContainerLog',
  'ExecSync',
  'Exec',
  'Attach',
  'PortForward',
  'ContainerStats',
  'ListContainerStats',
  'PodSandboxStats',
  'ListPodSandboxStats',
  'UpdateRuntimeConfig',
  'CheckpointContainer',
  'GetContainerEvents',
  'ListMetricDescriptors',
  'ListPodSandboxMetrics',
  'RuntimeConfig',
];

/** The one server-streaming method among them. */
export const STREAMING_METHODS = new Set(['GetContainerEvents']);

export function unimplementedMessage(service: string, method: string): string {
  return `${service}/${method} is not implemented: berth's CRI serves Version, Status, pod sandboxes and the image service; containers and streaming are not built yet`;
}
