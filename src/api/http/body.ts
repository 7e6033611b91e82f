import type http from 'node:http';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { berthError } from '../../core/errors.ts';

/** Request bodies of the HTTP front doors: JSON, capped, InvalidArgument when malformed. */
export const MAX_JSON_BODY = 16 << 20;

/** How long the body of an upgrade request may take to arrive. */
export const UPGRADE_BODY_TIMEOUT_MS = 30_000;

/** The parsed JSON body of an ordinary request; undefined when it is empty. */
export async function readJson<T>(req: http.IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_JSON_BODY) throw berthError('InvalidArgument', `request body larger than ${MAX_JSON_BODY} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    // A client that leaves mid-body is no failure of ours.
    if (req.destroyed && !req.complete) throw berthError('Canceled', 'client went away', err);
    throw err;
  }
  if (size === 0) return undefined as T;
  return parseJson<T>(Buffer.concat(chunks));
}

/**
 * The JSON body of an upgrade request. node:http hands such a request over
 * before reading its body: the bytes after the head are in `head` and then
 * on the socket. What follows the body stays for the upgraded stream.
 */
export async function readUpgradeJson<T>(req: http.IncomingMessage, socket: Duplex, head: Buffer | undefined): Promise<T> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (!Number.isInteger(length) || length < 0) throw berthError('InvalidArgument', 'invalid content-length');
  if (length > MAX_JSON_BODY) throw berthError('InvalidArgument', `request body larger than ${MAX_JSON_BODY} bytes`);
  let buf: Buffer = head ?? Buffer.alloc(0);
  if (buf.length < length) {
    buf = await new Promise<Buffer>((resolve, reject) => {
      const chunks = [buf];
      let have = buf.length;
      const onData = (c: Buffer) => {
        chunks.push(c);
        have += c.length;
        if (have >= length) {
          cleanup();
          socket.pause();
          resolve(Buffer.concat(chunks));
        }
      };
      const onEnd = () => {
        cleanup();
        reject(berthError('Canceled', 'client went away before its request body ended'));
      };
      // node:http's request timeout no longer covers a connection it handed over for an upgrade.
      const timer = setTimeout(() => {
        cleanup();
        reject(berthError('DeadlineExceeded', `request body not received within ${UPGRADE_BODY_TIMEOUT_MS / 1000} s`));
      }, UPGRADE_BODY_TIMEOUT_MS);
      timer.unref();
      const cleanup = () => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
      };
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('close', onEnd);
    });
  }
  const rest = buf.subarray(length);
  if (rest.length) socket.unshift(rest);
  if (length === 0) return undefined as T;
  return parseJson<T>(buf.subarray(0, length));
}

function parseJson<T>(buf: Buffer): T {
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (err) {
    throw berthError('InvalidArgument', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * An upload's body as a stream of its own, for a consumer that may give up
 * early (an archive refused at its manifest): destroying it leaves the
 * connection alone, and the rest of the upload is read and dropped, so the
 * client, still writing, reads the error answer instead of failing on EPIPE.
 * A client that goes away mid-upload errors it.
 */
export function detachedBody(req: http.IncomingMessage): Readable {
  const body = new PassThrough();
  req.pipe(body);
  req.once('error', (err) => body.destroy(err));
  req.once('close', () => {
    if (!req.complete) body.destroy(berthError('Canceled', 'the client went away during the upload'));
  });
  body.once('close', () => {
    req.unpipe(body);
    req.resume();
  });
  return body;
}
