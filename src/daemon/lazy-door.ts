import type { Socket } from 'node:net';
import type { Logger } from '../core/log.ts';

/**
 * A front door whose code is loaded when its first client connects, not at
 * berthd's start: its socket is bound at start (clients may connect at
 * once), and a connection that arrives while `load` runs waits for it and is
 * then served like any other. gRPC and the CRI's protobuf cost ~10 MiB of
 * resident memory and most of berthd's start, for a door a developer's host
 * may never use.
 *
 * `load` runs once; its result serves every connection from then on. A
 * `load` that fails is logged, its waiting connections are closed and the
 * next connection tries again: a broken door never takes berthd down. The
 * caller tracks its connections, for its close().
 *
 *   const door = lazyDoor('docker API', log, async () => {
 *     const server = (await import('../api/docker/api.ts')).createDockerApi(deps);
 *     return (socket) => server.emit('connection', socket);
 *   });
 *   net.createServer(door.accept);
 */
export interface LazyDoor {
  accept(socket: Socket): void;
}

export function lazyDoor(name: string, log: Logger, load: () => Promise<(socket: Socket) => void>): LazyDoor {
  let serve: ((socket: Socket) => void) | undefined;
  let loading: Promise<(socket: Socket) => void> | undefined;
  // A client that resets while the door loads must not raise an unhandled 'error'.
  const ignore = () => {};
  return {
    accept(socket) {
      if (serve) return serve(socket);
      socket.on('error', ignore);
      if (!loading) {
        const started = performance.now();
        loading = load();
        loading.then(
          (fn) => {
            serve = fn;
            log.debug(`${name} loaded`, { ms: Math.round(performance.now() - started) });
          },
          (err: unknown) => {
            loading = undefined;
            log.error(`${name} could not be loaded`, { err: err instanceof Error ? err.message : String(err) });
          },
        );
      }
      loading.then(
        (fn) => {
          socket.off('error', ignore);
          if (socket.destroyed) return;
          try {
            fn(socket);
          } catch (err) {
            log.error(`${name}: connection failed`, { err: err instanceof Error ? err.message : String(err) });
            socket.destroy();
          }
        },
        () => {
          socket.destroy();
        },
      );
    },
  };
}
