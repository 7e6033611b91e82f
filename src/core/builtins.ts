/**
 * Built-in modules berthd loads at their first use instead of at start.
 * A bundled import of a built-in runs when its module is initialised, which
 * for most of berthd is at start, whether or not the daemon ever pulls,
 * unpacks, commits or publishes a UDP port. Against a bare Node with
 * berthd's flags, node:tls (which node:https loads) costs ~7 ms of start and
 * ~4.7 MiB of RSS (OpenSSL's TLS state and the module's code); zlib,
 * worker_threads and dgram ~3 ms more. process.getBuiltinModule also skips
 * the ESM facade that reads every export.
 */
function onFirstUse<T>(load: () => T): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load());
}

export const httpsModule = onFirstUse(() => process.getBuiltinModule('node:https'));
export const tlsModule = onFirstUse(() => process.getBuiltinModule('node:tls'));
export const zlibModule = onFirstUse(() => process.getBuiltinModule('node:zlib'));
export const workerThreadsModule = onFirstUse(() => process.getBuiltinModule('node:worker_threads'));
export const dgramModule = onFirstUse(() => process.getBuiltinModule('node:dgram'));
