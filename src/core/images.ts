/**
 * The image model shared by the image service, every front door and the CLI
 * (which may import only core/ and the native client). Shapes follow the
 * Docker Engine API so the CLI prints what docker prints and the Docker API
 * front door passes them through.
 */

/** One row of `berth images` (Docker's ImageSummary). */
export interface ImageSummary {
  /** `sha256:` + hex of the config digest: the image ID. */
  Id: string;
  ParentId: string;
  /** Familiar `repo:tag` names, e.g. `busybox:latest`, `127.0.0.1:5000/app:1`. */
  RepoTags: string[];
  /** `repo@sha256:...` of the manifest (or index) the name points to. */
  RepoDigests: string[];
  /** Seconds since the epoch, from the image config. */
  Created: number;
  Size: number;
  Labels: Record<string, string>;
  Containers: number;
}

/** `berth image inspect` (Docker's ImageInspect). */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  DockerVersion: string;
  Author: string;
  Config: ImageConfigFields;
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  GraphDriver: { Name: string; Data: Record<string, string> | null };
  RootFS: { Type: string; Layers: string[] };
  Metadata: { LastTagTime: string };
}

/** The runnable part of an image config, in Docker's capitalised JSON. */
export interface ImageConfigFields {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  OnBuild?: string[] | null;
  /** Docker's HEALTHCHECK (not in the OCI config; docker-built images carry it). */
  Healthcheck?: HealthcheckConfig;
}

/** Docker's health check: Test is ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]; durations in nanoseconds. */
export interface HealthcheckConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/** One row of `berth image history`, newest first. */
export interface ImageHistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/**
 * One NDJSON line of a pull or push progress stream, as the Docker API
 * sends it. Per-layer lines carry `id` (the short digest) and a `status` of
 * Waiting, Downloading, Extracting, Verifying Checksum, Download complete,
 * Pull complete, Already exists (pull) or Preparing, Pushing, Pushed,
 * Layer already exists (push); lines without `id` are whole-image messages.
 */
export interface ProgressEvent {
  id?: string;
  status: string;
  progressDetail?: { current?: number; total?: number };
}

export interface RemoveResult {
  Untagged?: string;
  Deleted?: string;
}

export interface PruneResult {
  ImagesDeleted: RemoveResult[];
  SpaceReclaimed: number;
}

/** Options of `import` (a rootfs tar becoming a one-layer image). */
export interface ImportOptions {
  /** Name to tag the image with; untagged (dangling) when absent. */
  name?: string;
  /** Dockerfile-style instructions applied to the config: `CMD ["sh"]`, `ENV A=1`, ... */
  changes?: string[];
  message?: string;
  platform?: string;
}
