import type { Ctx } from '../../core/context.ts';
import { withCtx } from '../../core/context.ts';
import type { HealthcheckConfig } from '../../core/images.ts';
import type { EventBus } from '../../core/events.ts';

/**
 * Docker's health checks: a container whose image (HEALTHCHECK) or flags
 * (--health-cmd ...) name a test gets it run every interval inside it, as
 * an exec without a record. Exit 0 is healthy; anything else, or a run past
 * the timeout, a failure; `retries` failures in a row make it unhealthy.
 * Failures during the start period do not count, but a success ends it.
 * The state lives in memory (a restarted berthd starts over at
 * "starting"), shows in inspect (State.Health) and ps ("(healthy)"), and
 * changes are published as `health_status: <status>` events.
 *
 *   const health = new HealthMonitor({ probe, configOf, events });
 *   health.watch(ctx, id);   // on start; unwatch on exit
 */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

export interface HealthDeps {
  /** Run the test in the container (ContainerService.execSync). */
  probe(ctx: Ctx, id: string, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer; timedOut: boolean }>;
  /** The container's effective check, image and flags merged; undefined for none. */
  configOf(ctx: Ctx, id: string): Promise<HealthcheckConfig | undefined>;
  events: EventBus;
}

const NS = 1_000_000;
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;
/** Docker keeps the last five results and 4 KiB of each one's output. */
const LOG_ENTRIES = 5;
const MAX_OUTPUT = 4096;

/** The image's check with the container's fields over it; undefined when there is none or it is NONE. */
export function effectiveHealthcheck(image: HealthcheckConfig | undefined, own: HealthcheckConfig | undefined): HealthcheckConfig | undefined {
  const merged: HealthcheckConfig = { ...image };
  for (const [k, v] of Object.entries(own ?? {})) if (v !== undefined && v !== 0 && !(Array.isArray(v) && !v.length)) (merged as Record<string, unknown>)[k] = v;
  const test = merged.Test ?? [];
  if (!test.length || test[0] === 'NONE') return undefined;
  return merged;
}

/** The argv a test runs: CMD is exec'd as is, CMD-SHELL through /bin/sh -c. */
export function healthCommand(test: string[]): string[] {
  if (test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', test.slice(1).join(' ')];
  if (test[0] === 'CMD') return test.slice(1);
  return test;
}

export class HealthMonitor {
  readonly #d: HealthDeps;
  readonly #states = new Map<string, HealthState>();
  readonly #timers = new Map<string, { stop: AbortController }>();

  constructor(deps: HealthDeps) {
    this.#d = deps;
  }

  /** The health of a watched container, for inspect and ps. */
  health(id: string): HealthState | undefined {
    return this.#states.get(id);
  }

  /** Start checking a container that just started (again). */
  async watch(ctx: Ctx, id: string): Promise<void> {
    this.unwatch(id);
    const cfg = await this.#d.configOf(ctx, id).catch(() => undefined);
    if (!cfg?.Test) return;
    const stop = new AbortController();
    this.#timers.set(id, { stop });
    const state: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] };
    this.#states.set(id, state);
    const interval = cfg.Interval ? cfg.Interval / NS : DEFAULT_INTERVAL_MS;
    const timeout = cfg.Timeout ? cfg.Timeout / NS : DEFAULT_TIMEOUT_MS;
    const retries = cfg.Retries || DEFAULT_RETRIES;
    const startedAt = Date.now();
    const startPeriod = cfg.StartPeriod ? cfg.StartPeriod / NS : 0;
    const cmd = healthCommand(cfg.Test);
    const bg = withCtx(ctx, { signal: stop.signal });
    void (async () => {
      while (!stop.signal.aborted) {
        await sleep(interval, stop.signal);
        if (stop.signal.aborted) return;
        const start = new Date();
        let result: HealthResult;
        try {
          const r = await this.#d.probe(bg, id, cmd, timeout);
          const output = Buffer.concat([r.stdout, r.stderr]).subarray(0, MAX_OUTPUT).toString('utf8');
          result = r.timedOut
            ? { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: `Health check exceeded timeout (${timeout / 1000}s)` }
            : { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: r.exitCode, Output: output };
        } catch (err) {
          if (stop.signal.aborted) return;
          result = { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: (err as Error).message };
        }
        if (stop.signal.aborted) return;
        this.#record(ctx, id, state, result, { retries, inStartPeriod: Date.now() - startedAt < startPeriod });
      }
    })();
  }

  /** Stop checking (the container stopped or went away); its last state stays until it starts again or is forgotten. */
  unwatch(id: string): void {
    this.#timers.get(id)?.stop.abort();
    this.#timers.delete(id);
  }

  forget(id: string): void {
    this.unwatch(id);
    this.#states.delete(id);
  }

  close(): void {
    for (const id of [...this.#timers.keys()]) this.unwatch(id);
  }

  #record(ctx: Ctx, id: string, state: HealthState, result: HealthResult, opts: { retries: number; inStartPeriod: boolean }): void {
    state.Log.push(result);
    if (state.Log.length > LOG_ENTRIES) state.Log.shift();
    const before = state.Status;
    if (result.ExitCode === 0) {
      state.FailingStreak = 0;
      state.Status = 'healthy';
    } else if (!(opts.inStartPeriod && state.Status === 'starting')) {
      state.FailingStreak++;
      if (state.FailingStreak >= opts.retries) state.Status = 'unhealthy';
    }
    if (state.Status !== before) {
      this.#d.events.publish({ type: 'container', action: `health_status: ${state.Status}`, namespace: ctx.namespace, id, attributes: {} });
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
