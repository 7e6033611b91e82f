/**
 * One structured logger: JSON lines on stderr. `child(fields)` returns a
 * logger that adds fields to every line. Log an error once, where it is
 * handled; code that returns an error does not log it.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LogSink {
  write(line: string): unknown;
}

export function createLogger(opts: { level?: Level; sink?: LogSink; fields?: Record<string, unknown> } = {}): Logger {
  const min = order[opts.level ?? 'info'];
  const sink = opts.sink ?? process.stderr;
  const base = opts.fields ?? {};
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < min) return;
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...base, ...fields };
    const err = rec.err;
    if (err instanceof Error) {
      rec.err = { message: err.message, kind: (err as { kind?: string }).kind, stack: level === 'error' ? err.stack : undefined };
    }
    sink.write(JSON.stringify(rec) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level: opts.level, sink, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything, for tests and the CLI. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
