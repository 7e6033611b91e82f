import type { Ctx } from '../../core/context.ts';
import type { ContainerStore } from '../../metadata/containers.ts';
import type { RuntimeState } from './types.ts';

/**
 * A container's runtime state and the per-container serialization every
 * lifecycle operation relies on. The state lives in the record's `state`
 * column; it is changed only through `patch`, which applies a change to the
 * latest stored state, one change at a time per container, so an exit
 * handled in the background never overwrites a concurrent stop. `locked`
 * serializes whole operations (start, exit handling, removal) on one
 * container; different containers proceed in parallel.
 */
export class ContainerStates {
  readonly #store: ContainerStore;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #stateLocks = new Map<string, Promise<unknown>>();

  constructor(store: ContainerStore) {
    this.#store = store;
  }

  /** The stored state; a container without one is freshly created. */
  async state(ctx: Ctx, id: string): Promise<RuntimeState> {
    const s = (await this.#store.getState(ctx, id)) as RuntimeState | undefined;
    return s ?? { status: 'created', restartCount: 0 };
  }

  /**
   * Change some fields of a container's state, on the latest stored state
   * (never on a copy read before an await), one change at a time per
   * container. `patch` may be a function of the current state.
   */
  patch(ctx: Ctx, id: string, patch: Partial<RuntimeState> | ((st: RuntimeState) => Partial<RuntimeState>)): Promise<RuntimeState> {
    return serialized(this.#stateLocks, id, async () => {
      const cur = await this.state(ctx, id);
      const next = { ...cur, ...(typeof patch === 'function' ? patch(cur) : patch) };
      await this.#store.setState(ctx, id, next);
      return next;
    });
  }

  /** Run `fn` after every operation already queued on the container, whether they failed or not. */
  locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return serialized(this.#locks, id, fn);
  }
}

/** Whether the container has a live task. */
export function isActive(st: RuntimeState): boolean {
  return st.status === 'running' || st.status === 'paused';
}

/** Queue `fn` behind the last call for `id` in `locks`; the queue entry goes once nothing waits behind it. */
async function serialized<T>(locks: Map<string, Promise<unknown>>, id: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(id) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  locks.set(id, tail);
  try {
    return await run;
  } finally {
    if (locks.get(id) === tail) locks.delete(id);
  }
}
