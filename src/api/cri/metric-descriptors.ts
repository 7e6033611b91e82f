import type { UnaryHandler } from './types.ts';

/**
 * The metrics ListPodSandboxMetrics sends, with containerd's names (those
 * of cAdvisor, which kubelet re-exports under the same names) and label
 * keys. Only metrics berth measures are described.
 */
const BASE_LABELS = ['pod', 'namespace', 'container', 'id', 'image'];
const NETWORK_LABELS = [...BASE_LABELS, 'interface'];

export interface MetricDef {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE';
  labels: string[];
}

const def = (name: string, type: MetricDef['type'], help: string, labels = BASE_LABELS): MetricDef => ({ name, help, type, labels });

export const CONTAINER_METRICS = {
  cpuUsage: def('container_cpu_usage_seconds_total', 'COUNTER', 'Cumulative CPU time consumed in seconds.'),
  memoryUsage: def('container_memory_usage_bytes', 'GAUGE', 'Current memory usage in bytes, including all memory regardless of when it was accessed'),
  workingSet: def('container_memory_working_set_bytes', 'GAUGE', 'Amount of memory that is actively used by the container, excluding cached memory.'),
  rss: def('container_memory_rss', 'GAUGE', 'Size of RSS in bytes, total anonymous memory and swap cache memory used by the container.'),
  processes: def('container_processes', 'GAUGE', 'Number of processes running inside the container.'),
  fsUsage: def('container_fs_usage_bytes', 'GAUGE', 'Number of bytes that are consumed by the container on this filesystem.'),
  lastSeen: def('container_last_seen', 'GAUGE', 'Last time a container was seen by the exporter'),
  startTime: def('container_start_time_seconds', 'GAUGE', 'Start time of the container since unix epoch in seconds.'),
  specCpuShares: def('container_spec_cpu_shares', 'GAUGE', 'CPU share of the container.'),
  specCpuPeriod: def('container_spec_cpu_period', 'GAUGE', 'CPU period of the container.'),
  specMemoryLimit: def('container_spec_memory_limit_bytes', 'GAUGE', 'Memory limit for the container.'),
};

export const POD_METRICS = {
  rxBytes: def('container_network_receive_bytes_total', 'COUNTER', 'Cumulative count of bytes received', NETWORK_LABELS),
  rxErrors: def('container_network_receive_errors_total', 'COUNTER', 'Cumulative count of errors encountered while receiving', NETWORK_LABELS),
  txBytes: def('container_network_transmit_bytes_total', 'COUNTER', 'Cumulative count of bytes transmitted', NETWORK_LABELS),
  txErrors: def('container_network_transmit_errors_total', 'COUNTER', 'Cumulative count of errors encountered while transmitting', NETWORK_LABELS),
};

/** ListMetricDescriptors: what ListPodSandboxMetrics sends. */
export const listMetricDescriptors: UnaryHandler<object, object> = async () => ({
  descriptors: [...Object.values(CONTAINER_METRICS), ...Object.values(POD_METRICS)].map((d) => ({ name: d.name, help: d.help, label_keys: d.labels })),
});
