import type { Duplex, Readable, Writable } from 'node:stream';
import type { Logger } from '../../../core/log.ts';
import { WsChannels } from './channels.ts';
import type { SpdySession, SpdyStream } from './spdy-session.ts';
import type { WebSocketConn } from './websocket.ts';

/**
 * Remote commands (exec and attach) as kubelet's streaming server serves
 * them (k8s.io/cri-streaming remotecommand), over either transport:
 * - SPDY: the client opens one stream per channel, typed by its
 *   `streamType` header (error, stdin, stdout, stderr, resize); the session
 *   starts once all it asked for exist (error, plus one per stdin, stdout,
 *   stderr, plus resize with a tty from v3 on), within the creation timeout.
 * - WebSocket: channels 0-4 in one connection; an empty message on the
 *   first channel we write to says the session is ready.
 * Resize carries JSON objects `{"Width":W,"Height":H}` one after another.
 * The error channel gets the outcome: from v4 on a metav1 Status (Success,
 * or Failure with reason NonZeroExitCode and an ExitCode cause, or
 * InternalError), before v4 the message of a failure only.
 */
export const REMOTECOMMAND_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;

/** WebSocket subprotocols of remote commands: kubelet's, and v5 (the close signal) as the API server serves it. */
export const REMOTECOMMAND_WS_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io', ''] as const;

export const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 } as const;

export interface CommandRequest {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface TerminalSize {
  width: number;
  height: number;
}

/** A running process the session is joined to: an exec, or a container's own (attach). */
export interface ProcessIO {
  /** Output as the monitor sends it (docker's 8-byte framing unless a tty); writes are the process's stdin. */
  stream: Duplex;
  tty: boolean;
  resize(size: TerminalSize): Promise<void>;
  /** The client's stdin ended and it never wrote any (input that was written ends with the stream's end). */
  closeStdin(): Promise<void>;
  /** The exit code of an exec once it is recorded; undefined for an attach. */
  wait(): Promise<number | undefined>;
  /** The client went away: an exec's process is killed (containerd does), an attach just detaches. */
  abort(): Promise<void>;
}

/** metav1.Status as the error channel carries it. */
export interface StreamStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: Array<{ reason?: string; message?: string }> };
  code?: number;
}

export function successStatus(): StreamStatus {
  return { metadata: {}, status: 'Success' };
}

export function exitStatus(cmd: string[], code: number): StreamStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${cmd.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

export function internalErrorStatus(message: string): StreamStatus {
  return { metadata: {}, status: 'Failure', message: `Internal error occurred: ${message}`, reason: 'InternalError', details: { causes: [{ message }] }, code: 500 };
}

/** The client's side of a session, whatever the transport. */
export interface CommandChannels {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  resize?: Readable;
  writeStatus(status: StreamStatus): void;
  /** Flush and end every channel, then the connection. */
  finish(): Promise<void>;
  /** Aborts when the client goes away. */
  gone: AbortSignal;
}

/**
 * Wait for the SPDY streams a remote command needs. Rejects when they do
 * not all come within `timeoutMs` (kubelet's 30 s) or the connection ends.
 */
export function spdyCommandChannels(session: SpdySession, protocol: string, req: CommandRequest, timeoutMs: number): Promise<CommandChannels> {
  const resizable = protocol === 'v4.channel.k8s.io' || protocol === 'v3.channel.k8s.io';
  const expected = 1 + Number(req.stdin) + Number(req.stdout) + Number(req.stderr) + Number(req.tty && resizable);
  const streams = new Map<string, SpdyStream>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('timed out waiting for client to create streams')), timeoutMs);
    const onStream = (s: SpdyStream) => {
      const type = s.header('streamType') ?? '';
      if (!['error', 'stdin', 'stdout', 'stderr', 'resize'].includes(type) || streams.has(type)) return void s.reset();
      streams.set(type, s);
      if (streams.size === expected) done();
    };
    const onClose = () => done(new Error('connection closed before the streams were created'));
    const done = (err?: Error) => {
      clearTimeout(timer);
      session.off('stream', onStream);
      session.off('close', onClose);
      if (err) return reject(err);
      const error = streams.get('error');
      const gone = new AbortController();
      session.once('close', () => gone.abort());
      const v4 = protocol === 'v4.channel.k8s.io';
      resolve({
        stdin: streams.get('stdin'),
        stdout: streams.get('stdout'),
        stderr: streams.get('stderr'),
        resize: streams.get('resize'),
        writeStatus: (st) => writeStatusTo(error, st, v4),
        async finish() {
          await Promise.all([streams.get('stdout'), streams.get('stderr'), error].map((s) => s && endWritable(s)));
          session.close();
        },
        gone: gone.signal,
      });
    };
    session.on('stream', onStream);
    session.once('close', onClose);
  });
}

/** The channels of a remote command over a WebSocket with the negotiated `protocol`. */
export function wsCommandChannels(ws: WebSocketConn, protocol: string, req: CommandRequest): CommandChannels {
  const ch = new WsChannels(ws, { base64: protocol.includes('base64'), closeSignal: protocol === 'v5.channel.k8s.io', readable: [Channel.stdin, Channel.resize] });
  const gone = new AbortController();
  ws.once('close', () => gone.abort());
  // kubelet's "connection is established": an empty message on the first channel it writes to.
  ch.send(req.stdout ? Channel.stdout : req.stderr ? Channel.stderr : Channel.error, Buffer.alloc(0));
  const stdout = req.stdout ? ch.output(Channel.stdout) : undefined;
  const stderr = req.stderr ? ch.output(Channel.stderr) : undefined;
  const error = ch.output(Channel.error);
  const v4 = protocol.startsWith('v4.') || protocol.startsWith('v5.');
  return {
    stdin: req.stdin ? ch.input(Channel.stdin) : undefined,
    stdout,
    stderr,
    resize: ch.input(Channel.resize),
    writeStatus: (st) => writeStatusTo(error, st, v4),
    async finish() {
      await Promise.all([stdout, stderr, error].map((s) => s && endWritable(s)));
      ws.close(1000);
    },
    gone: gone.signal,
  };
}

function writeStatusTo(error: Writable | undefined, st: StreamStatus, json: boolean): void {
  if (!error || error.destroyed || error.writableEnded) return;
  if (json) error.write(Buffer.from(JSON.stringify(st)));
  else if (st.status !== 'Success') error.write(Buffer.from(st.message ?? 'error'));
}

function endWritable(w: Writable): Promise<void> {
  if (w.destroyed || w.writableFinished) return Promise.resolve();
  return new Promise((resolve) => {
    w.once('finish', resolve);
    w.once('close', resolve);
    w.end();
  });
}

/**
 * Join a session's channels to a process until its output ends: output to
 * stdout/stderr (non-tty output is demultiplexed, a stream the client did
 * not ask for is dropped), stdin and resizes to the process, then the
 * outcome on the error channel. A client that goes away aborts the process
 * (see ProcessIO.abort) and leaves nothing open.
 */
export async function serveCommand(ch: CommandChannels, start: () => Promise<ProcessIO>, opts: { cmd?: string[]; log: Logger }): Promise<void> {
  let io: ProcessIO;
  try {
    io = await start();
  } catch (err) {
    if (!ch.gone.aborted) {
      ch.writeStatus(internalErrorStatus((err as Error).message));
      await ch.finish();
    }
    return;
  }
  const onGone = () => {
    void io.abort().catch(() => {});
    io.stream.destroy();
    ch.stdin?.destroy();
  };
  if (ch.gone.aborted) onGone();
  else ch.gone.addEventListener('abort', onGone, { once: true });
  try {
    if (ch.resize) readSizes(ch.resize, (size) => void io.resize(size).catch((err) => opts.log.debug('resize failed', { err: (err as Error).message })));
    if (ch.stdin) pumpInput(ch.stdin, io);
    await pumpOutput(io.stream, io.tty, ch.stdout, ch.stderr);
    if (ch.gone.aborted) return;
    let status: StreamStatus;
    try {
      const code = await io.wait();
      status = code === undefined || code === 0 ? successStatus() : exitStatus(opts.cmd ?? [], code);
    } catch (err) {
      status = internalErrorStatus((err as Error).message);
    }
    if (ch.gone.aborted) return;
    ch.writeStatus(status);
    await ch.finish();
  } finally {
    ch.gone.removeEventListener('abort', onGone);
    io.stream.destroy();
  }
}

/** Client input to the process, with backpressure; its end closes the process's stdin. */
function pumpInput(stdin: Readable, io: ProcessIO): void {
  let sent = false;
  stdin.on('data', (chunk: Buffer) => {
    if (io.stream.destroyed || io.stream.writableEnded) return;
    sent = true;
    if (!io.stream.write(chunk)) {
      stdin.pause();
      io.stream.once('drain', () => stdin.resume());
    }
  });
  stdin.once('end', () => {
    // Input that was sent is closed by ending the stream after it (the monitor keeps the order); no input, by a close of its own.
    if (sent) io.stream.end();
    else void io.closeStdin().catch(() => {});
  });
  stdin.on('error', () => {});
}

/** Process output to the client until it ends; resolves when the process's stream is done. */
export function pumpOutput(src: Readable, tty: boolean, stdout?: Writable, stderr?: Writable): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  const emit = (target: Writable | undefined, data: Buffer) => {
    if (!target || target.destroyed || target.writableEnded || !data.length) return;
    if (!target.write(data)) {
      src.pause();
      target.once('drain', () => src.resume());
    }
  };
  return new Promise((resolve) => {
    src.on('data', (chunk: Buffer) => {
      if (tty) return emit(stdout, chunk);
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 8) {
        const size = pending.readUInt32BE(4);
        if (pending.length < 8 + size) break;
        const data = pending.subarray(8, 8 + size);
        if (pending[0] === Channel.stdout) emit(stdout, data);
        else if (pending[0] === Channel.stderr) emit(stderr, data);
        pending = pending.subarray(8 + size);
      }
    });
    src.once('end', () => resolve());
    src.once('close', () => resolve());
    src.on('error', () => resolve());
  });
}

/** Parse a stream of concatenated JSON objects `{"Width":..,"Height":..}` (Go's json.Encoder output). */
export function readSizes(src: Readable, onSize: (size: TerminalSize) => void): void {
  let text = '';
  src.setEncoding('utf8');
  src.on('data', (chunk: string) => {
    text += chunk;
    if (text.length > 64 * 1024) text = '';
    for (;;) {
      const start = text.indexOf('{');
      const end = text.indexOf('}', start);
      if (start < 0 || end < 0) break;
      const obj = text.slice(start, end + 1);
      text = text.slice(end + 1);
      try {
        const v = JSON.parse(obj) as { Width?: unknown; Height?: unknown };
        const width = Number(v.Width);
        const height = Number(v.Height);
        if (Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 && width < 65536 && height < 65536) onSize({ width, height });
      } catch {
        // A malformed object is skipped, as a decoder error ends only kubelet's resize loop.
      }
    }
  });
  src.on('error', () => {});
}
