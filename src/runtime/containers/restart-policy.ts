import type { RestartPolicy } from '../../core/containers.ts';

/**
 * Docker's restart rules, as pure functions. berthd applies them when a
 * container's task exits and again at its own start-up.
 *
 * - `no`: never. `always`: always, also at daemon start-up, unless the user
 *   stopped the container. `unless-stopped`: like always, but a container the
 *   user stopped stays stopped across daemon restarts too.
 * - `on-failure[:N]`: only for a non-zero exit, at most N times when N > 0.
 * - A manual stop (`stop`, `kill`, `rm -f`) never triggers a restart.
 */
export interface ExitFacts {
  exitCode: number;
  /** The user stopped or killed it (docker's HasBeenManuallyStopped). */
  manuallyStopped: boolean;
  restartCount: number;
}

export function shouldRestart(policy: RestartPolicy | undefined, facts: ExitFacts): boolean {
  if (!policy || policy.name === 'no' || facts.manuallyStopped) return false;
  switch (policy.name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure': {
      if (facts.exitCode === 0) return false;
      const max = policy.maximumRetryCount ?? 0;
      return max <= 0 || facts.restartCount < max;
    }
  }
  return false;
}

/**
 * Whether berthd starts the container when it itself starts. `always` does
 * even after a manual stop (docker: "if it is manually stopped, it is
 * restarted only when the daemon restarts"); that is what sets it apart
 * from `unless-stopped`.
 */
export function startOnDaemonStart(policy: RestartPolicy | undefined, wasRunning: boolean, manuallyStopped: boolean): boolean {
  if (!policy) return false;
  if (policy.name === 'always') return true;
  if (manuallyStopped) return false;
  if (policy.name === 'unless-stopped') return true;
  return policy.name === 'on-failure' && wasRunning;
}

const MIN_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A container that ran this long resets the back-off, as docker does. */
const RESET_AFTER_MS = 10_000;

/** The delay before the next restart: 100 ms doubling to one minute, reset after a 10 s run. */
export function restartDelay(previousDelayMs: number, ranForMs: number): number {
  if (ranForMs >= RESET_AFTER_MS || previousDelayMs <= 0) return MIN_DELAY_MS;
  return Math.min(previousDelayMs * 2, MAX_DELAY_MS);
}
