import type { ContainerRecord } from '../../core/containers.ts';
import type { ContainerSummary } from '../../runtime/containers/containers.ts';
import type { CriContainerState } from './container-types.ts';

/** ISO time (ms) as the CRI's nanoseconds since the epoch, a decimal string; 0 when unset. */
export function isoToNs(iso: string | undefined): string {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(ms) && ms > 0 ? String(BigInt(ms) * 1_000_000n) : '0';
}

/** A berth container that the CRI made: one with a pod. */
export function isCriContainer(c: { record: ContainerRecord }): boolean {
  return !!c.record.config.pod;
}

/** A start that failed leaves the container exited, with reason StartError, as containerd reports it (kubelet then makes a new attempt). */
function failedStart(c: ContainerSummary): boolean {
  return c.state.status === 'created' && !!c.state.error;
}

export function criContainerState(c: ContainerSummary): CriContainerState {
  if (failedStart(c)) return 'CONTAINER_EXITED';
  switch (c.state.status) {
    case 'created':
      return 'CONTAINER_CREATED';
    case 'running':
    case 'paused':
    case 'restarting':
      return 'CONTAINER_RUNNING';
    case 'exited':
    case 'dead':
    case 'removing':
      return 'CONTAINER_EXITED';
    default:
      return 'CONTAINER_UNKNOWN';
  }
}

function metadata(rec: ContainerRecord) {
  return { name: rec.config.pod?.name ?? rec.name, attempt: rec.config.pod?.attempt ?? 0 };
}

/** ListContainers' Container. `image` is the image as asked for, `image_ref` its ID, as containerd lists them. */
export function toCriContainer(c: ContainerSummary) {
  const rec = c.record;
  return {
    id: rec.id,
    pod_sandbox_id: rec.config.pod?.sandboxId ?? '',
    metadata: metadata(rec),
    image: { image: rec.imageName, annotations: {} },
    image_ref: rec.imageId,
    state: criContainerState(c),
    created_at: isoToNs(rec.createdAt),
    labels: { ...rec.config.labels },
    annotations: { ...rec.config.annotations },
    image_id: rec.imageId,
  };
}

/** Signal names the CRI's Signal enum has and a stop signal commonly is; any other is reported as the runtime's default. */
const STOP_SIGNALS = new Set(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGSTOP', 'SIGPWR']);

/**
 * containerd's reasons: an exit of 0 is Completed, a kill by the OOM
 * killer OOMKilled, any other exit Error; a container that could not
 * start carries the error as its message.
 */
function reasonOf(c: ContainerSummary): { reason: string; message: string } {
  if (criContainerState(c) !== 'CONTAINER_EXITED') return { reason: '', message: '' };
  if (failedStart(c)) return { reason: 'StartError', message: c.state.error ?? '' };
  if (c.state.oomKilled) return { reason: 'OOMKilled', message: '' };
  return { reason: c.state.exitCode === 0 ? 'Completed' : 'Error', message: c.state.exitCode === 0 ? '' : (c.state.error ?? '') };
}

/**
 * ContainerStatus' status. `image` is the image's first tag and
 * `image_ref` its first repo digest where it has them (containerd's
 * rules), which the caller looks up and hands in.
 */
export function toCriContainerStatus(c: ContainerSummary, image: { spec: string; ref: string }, logPath: string, user?: { uid: number; gid: number; additionalGids?: number[] }) {
  const rec = c.record;
  const cfg = rec.config;
  const st = c.state;
  const exited = criContainerState(c) === 'CONTAINER_EXITED';
  const started = st.startedAt && (exited || criContainerState(c) === 'CONTAINER_RUNNING') ? isoToNs(st.startedAt) : '0';
  return {
    id: rec.id,
    metadata: metadata(rec),
    state: criContainerState(c),
    created_at: isoToNs(rec.createdAt),
    started_at: started,
    // A failed start has no finish time of its own: it ended when it was tried, after its creation.
    finished_at: exited ? isoToNs(st.finishedAt ?? (failedStart(c) ? rec.createdAt : undefined)) : '0',
    exit_code: exited ? (st.exitCode ?? 0) : 0,
    image: { image: image.spec, annotations: {} },
    image_ref: image.ref,
    ...reasonOf(c),
    labels: { ...cfg.labels },
    annotations: { ...cfg.annotations },
    mounts: (cfg.mounts ?? [])
      .filter((m) => m.type === 'bind')
      .map((m) => ({
        container_path: m.target,
        host_path: m.source ?? '',
        readonly: !!m.readOnly,
        selinux_relabel: false,
        propagation: m.options?.includes('rshared') ? 'PROPAGATION_BIDIRECTIONAL' : m.options?.includes('rslave') ? 'PROPAGATION_HOST_TO_CONTAINER' : 'PROPAGATION_PRIVATE',
      })),
    log_path: cfg.logPath ? logPath : '',
    resources: criResources(rec),
    image_id: rec.imageId,
    user: user ? { linux: { uid: String(user.uid), gid: String(user.gid), supplemental_groups: (user.additionalGids ?? []).map(String) } } : null,
    stop_signal: cfg.stopSignal && STOP_SIGNALS.has(cfg.stopSignal.toUpperCase()) ? cfg.stopSignal.toUpperCase() : 'RUNTIME_DEFAULT',
  };
}

/** The container's resources as the CRI's ContainerResources (what it was created or last updated with). */
export function criResources(rec: ContainerRecord) {
  const r = rec.config.resources ?? {};
  return {
    linux: {
      cpu_period: String(r.cpuPeriod ?? 0),
      cpu_quota: String(r.cpuQuota ?? 0),
      cpu_shares: String(r.cpuShares ?? 0),
      memory_limit_in_bytes: String(r.memory ?? 0),
      oom_score_adj: String(rec.config.oomScoreAdj ?? 0),
      cpuset_cpus: r.cpusetCpus ?? '',
      cpuset_mems: r.cpusetMems ?? '',
      hugepage_limits: (r.hugepageLimits ?? []).map((h) => ({ page_size: h.pageSize, limit: String(h.limit) })),
      unified: {},
      memory_swap_limit_in_bytes: String(r.memorySwap ?? 0),
    },
  };
}
