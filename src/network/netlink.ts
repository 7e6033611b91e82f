import { closeSync, readSync, write } from 'node:fs';
import { errnoError, netlinkRouteSocketIn } from '../core/sys.ts';

/**
 * The one netlink request berth makes itself: delete an interface by name
 * inside a container's network namespace, what the bridge plugin's DEL does
 * there (its `ip link del`). Deleting one end of a veth pair deletes both,
 * so the host end leaves the bridge at the same moment.
 */

const RTM_DELLINK = 17;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLMSG_ERROR = 0x2;
const IFLA_IFNAME = 3;
const ENODEV = 19;
const NLMSG_HDRLEN = 16;
const IFINFOMSG_LEN = 16;

/** An RTM_DELLINK request naming the interface (struct nlmsghdr, struct ifinfomsg, IFLA_IFNAME). */
export function delLinkRequest(ifName: string, seq: number): Buffer {
  const name = Buffer.from(`${ifName}\0`, 'latin1');
  if (name.length > 16 || !/^[^\0/\s]+$/.test(ifName)) throw new TypeError(`invalid interface name "${ifName}"`);
  const attrLen = 4 + name.length;
  const len = NLMSG_HDRLEN + IFINFOMSG_LEN + align4(attrLen);
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(RTM_DELLINK, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  b.writeUInt32LE(seq, 8);
  // ifinfomsg all zero: AF_UNSPEC, index 0, so the kernel looks the link up by IFLA_IFNAME.
  const at = NLMSG_HDRLEN + IFINFOMSG_LEN;
  b.writeUInt16LE(attrLen, at);
  b.writeUInt16LE(IFLA_IFNAME, at + 2);
  name.copy(b, at + 4);
  return b;
}

/** The errno (positive; 0 for success) of the NLMSG_ERROR answer to request `seq`, undefined if `b` holds none. */
export function ackErrno(b: Buffer, seq: number): number | undefined {
  for (let off = 0; off + NLMSG_HDRLEN <= b.length; ) {
    const len = b.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > b.length) return undefined;
    if (b.readUInt16LE(off + 4) === NLMSG_ERROR && b.readUInt32LE(off + 8) === seq && len >= NLMSG_HDRLEN + 4) return 0 - b.readInt32LE(off + NLMSG_HDRLEN);
    off += align4(len);
  }
  return undefined;
}

let nextSeq = 1;

/**
 * Delete `ifName` in the namespace mounted on `netnsFile`. Resolves false
 * when there is no such interface (DEL is idempotent). The request runs on
 * a libuv worker: the kernel unregisters a veth pair within the write
 * (10-20 ms here under load, waiting for RCU grace periods), which must not
 * stall the event loop. The answer is queued before the write returns.
 */
export async function deleteLinkIn(netnsFile: string, ifName: string): Promise<boolean> {
  const seq = nextSeq++ >>> 0;
  const req = delLinkRequest(ifName, seq);
  const fd = netlinkRouteSocketIn(netnsFile);
  try {
    await new Promise<void>((resolve, reject) => write(fd, req, 0, req.length, null, (err) => (err ? reject(err) : resolve())));
    const answer = Buffer.alloc(4096);
    const n = readSync(fd, answer, 0, answer.length, null);
    const errno = ackErrno(answer.subarray(0, n), seq);
    if (errno === undefined) throw new Error(`netlink: no answer to deleting ${ifName} in ${netnsFile}`);
    if (errno === ENODEV) return false;
    if (errno !== 0) throw errnoError(errno, 'RTM_DELLINK', ifName);
    return true;
  } finally {
    closeSync(fd);
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
