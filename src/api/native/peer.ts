import { readlinkSync } from 'node:fs';
import { berthError } from '../../core/errors.ts';
import { peerCredentials } from '../../core/sys.ts';

/*
 * Who is at the other end of a native API connection, for the requests
 * that name paths on berthd's host (the CLI host's commands, a build's
 * context read in place): such a path means the same file to berthd only
 * for a client in berthd's own mount namespace, and reading it with
 * berthd's rights is the client's own right only for root.
 */

/** The descriptor of a connection's socket. */
export function socketFd(socket: unknown): number {
  const fd = (socket as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw berthError('Internal', 'cannot see the client socket');
  return fd;
}

/** Whether process `pid` sees berthd's file system (its mount namespace is berthd's). */
export function sameMountNamespace(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`) === readlinkSync('/proc/self/ns/mnt');
  } catch {
    return false;
  }
}

/** Whether the client of `socket` is root in berthd's mount namespace (false for anything that is not a unix socket). */
export function isLocalRoot(socket: unknown): boolean {
  try {
    const peer = peerCredentials(socketFd(socket));
    return peer.uid === 0 && sameMountNamespace(peer.pid);
  } catch {
    return false;
  }
}
