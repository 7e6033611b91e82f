import type { ProgressEvent } from './images.ts';

/**
 * What a build reports as it goes, shared by the builder, the native API
 * (NDJSON lines), the Docker door (docker's JSON messages) and the CLI.
 * Steps are numbered across the stages the target needs, in the order they
 * start; stages built in parallel interleave their events, told apart by
 * `step`.
 */
export type BuildEvent =
  | { kind: 'step'; step: number; total: number; stage: string; index: number; count: number; text: string }
  | { kind: 'cached'; step: number; id: string }
  | { kind: 'log'; step: number; data: string }
  | { kind: 'container'; step: number; id: string }
  | { kind: 'done'; step: number; ms: number; id?: string }
  | { kind: 'pull'; step: number; progress: ProgressEvent }
  | { kind: 'warning'; message: string }
  | { kind: 'result'; id: string; tags: string[] };
