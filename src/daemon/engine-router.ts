import { Router, type Handler } from '../api/native/server.ts';

/**
 * The native routes that reach the engine: registered on `target` (the
 * router the API server serves), each handler first waits for `ready`, the
 * end of the engine's recovery at start (wire.ts). A request that comes
 * while berthd recovers is served once it has; if recovery fails, `ready`'s
 * error (Unavailable) is the request's answer. Routes registered on
 * `target` directly (`/_ping`, `/version`) answer at once.
 *
 *   const engine = new EngineRouter(router, recovered);
 *   registerImageRoutes(engine, images);
 */
export class EngineRouter extends Router {
  readonly #target: Router;
  readonly #ready: Promise<void>;

  constructor(target: Router, ready: Promise<void>) {
    super();
    this.#target = target;
    this.#ready = ready;
  }

  override add(method: string, pattern: string, handler: Handler): void {
    this.#target.add(method, pattern, async (req) => {
      await this.#ready;
      return handler(req);
    });
  }
}
