import { createHash } from 'node:crypto';
import type { Ctx } from '../core/context.ts';
import type { ContainerConfig } from '../core/containers.ts';
import type { ImageConfig } from '../images/types.ts';
import { envLookup, type StepScope } from './config-steps.ts';
import type { BuildContext } from './context.ts';
import type { FileHashCache } from './hash-cache.ts';
import type { Dockerfile, Stage } from './dockerfile.ts';
import type { BuildEvent, BuildImage, BuilderDeps, BuildInput } from './types.ts';

// What the builder and its steps (run-step.ts, copy-step.ts) share: a
// build's state, a stage's state, and what a step needs of the builder.

export interface StageState {
  /** The last image stored for this stage; the config below may have moved on from it. */
  image?: BuildImage;
  config: ImageConfig;
  /** The config differs from `image`'s. */
  dirty: boolean;
  key: string;
  args: Map<string, string | undefined>;
  shell: string[];
  cmdSet: boolean;
}

export interface BuildRun {
  ctx: Ctx;
  id: string;
  dir: string;
  context: BuildContext;
  df: Dockerfile;
  input: BuildInput;
  emit: (ev: BuildEvent) => void;
  step: number;
  total: number;
  predefined: Map<string, string>;
  meta: Map<string, string | undefined>;
  stageRuns: Map<number, Promise<StageState>>;
  /** Untagged image records this build made, dropped at the end. */
  made: Set<string>;
  /** Images the build uses, kept from a concurrent prune until it ends (ID -> release). */
  holds: Map<string, () => void>;
  usedArgs: Set<string>;
  needed: Stage[];
  /** SOURCE_DATE_EPOCH, when given: every time in the image is pinned to it. */
  epoch?: number;
  /** The `--cache-from` images found in the store. */
  cacheFrom: BuildImage[];
}

/**
 * What a step needs of the builder: its deps, expansion scopes, images by
 * stage or name, containers to work in, and the cache.
 */
export interface StepHost {
  deps: BuilderDeps;
  /** Content hashes of files read in place, kept between builds. */
  hashes: FileHashCache;
  /** Expansion scope: the stage's ENV, then its ARGs; without a stage, the meta and platform args. */
  scope(run: BuildRun, st: StageState | undefined, used: Set<string>): StepScope;
  /** The image `name` stands for in stage `stage`: an earlier stage's (stored now if need be), or an image (pulled if missing). */
  imageFor(run: BuildRun, stage: Stage, name: string, step: number): Promise<BuildImage>;
  /** A created (never started) container of image `id`, its rootfs mounted for reading until `release`. */
  openImage(run: BuildRun, id: string): Promise<{ rootfs: string; release: () => Promise<void> }>;
  /**
   * Create a container for the step, let `work` change it, commit it as the
   * stage's new image and remove it; a `work` that resolves to false changed
   * nothing, and nothing is committed (resolves to undefined).
   */
  inContainer(run: BuildRun, st: StageState, step: number, config: ContainerConfig, createdBy: string, work: (id: string) => Promise<void | boolean>): Promise<string | undefined>;
  /** Take the cached image of the stage's key, or of a `--cache-from` image whose next step is `createdBy`, when the build may. */
  cached(run: BuildRun, st: StageState, step: number, createdBy?: string): Promise<boolean>;
  /** The ID of an image holding the stage's layers (stored now for a stage from scratch). */
  parentId(run: BuildRun, st: StageState): Promise<string>;
}

/** Note the declared args a step used (for the unused --build-arg warning). */
export function noteArgs(run: BuildRun, st: StageState, used: Set<string>): void {
  for (const u of used) if (st.args.has(u)) run.usedArgs.add(u);
}

/** Declared args with a value, as RUN sees them in its environment (never written to the image). */
export function argEnv(st: StageState): string[] {
  const env = envLookup(st.config.config?.Env);
  const out: string[] = [];
  for (const [k, v] of st.args) if (v !== undefined && !env.has(k)) out.push(`${k}=${v}`);
  return out;
}

export function timestamp(run: BuildRun): string {
  return run.epoch !== undefined ? new Date(run.epoch * 1000).toISOString().replace('.000Z', 'Z') : new Date().toISOString();
}

export function hashKey(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}\n`);
  return `sha256:${h.digest('hex')}`;
}

/**
 * What `.dockerignore` leaves out of a context read in place, by path from
 * the context root (a context sent as a tar had it taken out on arrival).
 */
export function contextIgnored(run: BuildRun): ((rel: string) => boolean) | undefined {
  const { context } = run;
  return context.inPlace && !context.ignore.empty ? (rel) => context.ignore.ignored(rel) : undefined;
}
