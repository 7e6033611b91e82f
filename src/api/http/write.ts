import type http from 'node:http';
import { berthError } from '../../core/errors.ts';

/**
 * Write one chunk of a streamed answer and, when the socket's buffer is
 * full, wait for it to drain (or the client to leave), so a slow client
 * holds back its producer instead of growing memory. Canceled once the
 * client has gone.
 */
export async function writeStreamed(res: http.ServerResponse, chunk: string | Buffer): Promise<void> {
  if (res.destroyed) throw berthError('Canceled', 'client went away');
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
