import { readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { hasErrno } from '../core/errors.ts';

/**
 * host-local's files under its data dir: `<dataDir>/<network>/<address>`
 * per allocated address, holding "containerId\r\nifName" (only the id in
 * older releases), beside its `lock` and `last_reserved_ip.N` files.
 */
export function isAllocationFile(name: string): boolean {
  return name !== 'lock' && !name.startsWith('last_reserved_ip');
}

/** Who holds an allocation, from its file's text. */
export function allocationOwner(text: string): { containerId: string; ifName?: string } {
  const [containerId, ifName] = text.split(/\r?\n/).map((s) => s.trim());
  return { containerId: containerId ?? '', ifName: ifName || undefined };
}

/**
 * Release `address` on `network` if `containerId`'s `ifName` holds it, as
 * host-local's DEL does (it matches the file's text, then unlinks). The
 * unlink is atomic, so an ADD choosing addresses meanwhile either still
 * sees the file or takes the address. Returns whether a file was removed.
 */
export function releaseAllocation(dataDir: string, network: string, address: string, containerId: string, ifName: string): boolean {
  const file = path.join(dataDir, network, address);
  let owner;
  try {
    owner = allocationOwner(readFileSync(file, 'utf8'));
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return false;
    throw err;
  }
  if (owner.containerId !== containerId || (owner.ifName !== undefined && owner.ifName !== ifName)) return false;
  try {
    unlinkSync(file);
    return true;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return false;
    throw err;
  }
}
