import { Duplex, type Writable } from 'node:stream';
import type { Logger } from '../../../core/log.ts';
import { WsChannels } from './channels.ts';
import { SpdyStream, type SpdySession } from './spdy-session.ts';
import type { WebSocketConn } from './websocket.ts';

/**
 * Port forwarding as kubelet's streaming server serves it (k8s.io/cri-streaming
 * portforward):
 * - SPDY (`portforward.k8s.io`): the client opens a pair of streams per
 *   forwarded connection, `streamType` error and data, both carrying the
 *   `port` and a `requestID` (clients that send none are paired by stream
 *   id, as kubelet does). Once both exist, a connection to the port in the
 *   pod is made and joined to the data stream; a failure is written to the
 *   error stream and both are reset. Many connections share one session.
 * - WebSocket (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io` or none): one
 *   connection per port of the request, channel 2n data and 2n+1 error for
 *   the n-th; the first message on each says its port (16 bits, little
 *   endian). The connection ends once every port's connection has.
 */
export const PORTFORWARD_PROTOCOLS = ['portforward.k8s.io'] as const;
export const PORTFORWARD_WS_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io', ''] as const;

/** Connect to `port` on the pod's loopback. */
export type Dialer = (port: number) => Promise<Duplex>;

/** Header checks kubelet makes before it accepts a port-forward stream. */
export function checkPortStream(headers: Record<string, string[]>): string | undefined {
  const port = headers['port']?.[0];
  if (!port) return '"port" header is required';
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) return `unable to parse "${port}" as a port`;
  const type = headers['streamtype']?.[0];
  if (!type) return '"streamType" header is required';
  if (type !== 'data' && type !== 'error') return `invalid stream type "${type}"`;
  return undefined;
}

/** Serve the stream pairs of a SPDY session until it closes; `timeoutMs` bounds the wait for a pair's second stream. */
export function serveSpdyPortForward(session: SpdySession, dial: Dialer, opts: { timeoutMs: number; podId: string; log: Logger }): void {
  const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream; timer: NodeJS.Timeout }>();
  session.on('stream', (s: SpdyStream) => {
    const type = s.header('streamType')!;
    let id = s.header('requestID');
    if (!id) id = String(type === 'error' ? s.id : s.id - 2);
    let pair = pairs.get(id);
    if (!pair) {
      const timer = setTimeout(() => {
        pairs.delete(id);
        pair!.error?.end(`(request=${id}) timed out waiting for streams`);
        pair!.data?.reset();
      }, opts.timeoutMs);
      timer.unref();
      pair = { timer };
      pairs.set(id, pair);
    }
    if (pair[type as 'data' | 'error']) {
      s.write(`error processing stream for request ${id}: ${type} stream already assigned`);
      return void s.reset();
    }
    pair[type as 'data' | 'error'] = s;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(id);
      void forward(pair.data, pair.error, Number(pair.data.header('port')), dial, opts);
    }
  });
  session.once('close', () => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    pairs.clear();
  });
}

/** Serve a WebSocket port-forward for `ports` (the request's, as kubelet takes them). */
export async function serveWsPortForward(ws: WebSocketConn, protocol: string, ports: number[], dial: Dialer, opts: { podId: string; log: Logger }): Promise<void> {
  const ch = new WsChannels(ws, { base64: protocol.includes('base64'), closeSignal: false, readable: ports.map((_, i) => 2 * i) });
  const port16 = (p: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(p, 0);
    return b;
  };
  await Promise.all(
    ports.map((port, i) => {
      ch.send(2 * i, port16(port));
      ch.send(2 * i + 1, port16(port));
      return forward(Duplex.from({ readable: ch.input(2 * i), writable: ch.output(2 * i) }), ch.output(2 * i + 1), port, dial, opts);
    }),
  );
  ws.close(1000);
}

/**
 * Join one client stream to a connection in the pod. Each side's end is
 * passed on as a half-close; once one direction has ended the other gets a
 * second to finish (containerd's grace, as socat's), since a client such as
 * kubectl waits for the error stream's end before it lets go of its side.
 * The error stream ends with the forward, carrying the failure if any.
 */
async function forward(data: Duplex, error: Writable, port: number, dial: Dialer, opts: { podId: string; log: Logger }): Promise<void> {
  let conn: Duplex;
  try {
    conn = await dial(port);
  } catch (err) {
    const msg = `error forwarding port ${port} to pod ${opts.podId}, uid : ${(err as Error).message}`;
    opts.log.debug('port forward failed', { port, err: (err as Error).message });
    if (!error.destroyed && !error.writableEnded) error.end(msg);
    if (data instanceof SpdyStream) data.reset();
    else data.destroy();
    return;
  }
  await new Promise<void>((resolve) => {
    let done = false;
    let ends = 0;
    let grace: NodeJS.Timeout | undefined;
    const finished = () => {
      if (done) return;
      done = true;
      clearTimeout(grace);
      conn.destroy();
      const endError = () => {
        if (!error.destroyed && !error.writableEnded) error.end();
        data.destroy();
        resolve();
      };
      // Our end of the data stream goes out before the error stream's, so the client reads all the data first.
      if (data.writableEnded && !data.writableFinished && !data.destroyed) data.once('finish', endError).once('close', endError);
      else endError();
    };
    const oneEnd = () => {
      if (++ends === 2) return finished();
      grace = setTimeout(finished, 1000);
      grace.unref();
    };
    data.pipe(conn);
    conn.pipe(data);
    data.once('end', oneEnd);
    conn.once('end', oneEnd);
    data.once('close', finished);
    conn.once('close', () => (conn.readableEnded ? undefined : finished()));
    data.on('error', finished);
    conn.on('error', finished);
  });
}
