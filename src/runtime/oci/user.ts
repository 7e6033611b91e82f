import { berthError } from '../../core/errors.ts';

/**
 * Resolve a container's user the way Docker (runc's libcontainer/user)
 * does, from the contents of the image's /etc/passwd and /etc/group. Pure:
 * the caller reads both files from the rootfs (without following symlinks
 * out of it) and passes their text, or undefined when a file is missing.
 *
 *   resolveUser({ user: 'www-data:adm', groupAdd: ['audio'], passwd, group })
 *   -> { uid: 33, gid: 4, additionalGids: [29], home: '/var/www' }
 */

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

const MAX_ID = 2147483647;

function lines(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const toId = (s: string | undefined): number => (s !== undefined && /^\d+$/.test(s) ? Number(s) : NaN);

export function parsePasswd(text: string): PasswdEntry[] {
  return lines(text)
    .filter((f) => f[0])
    .map((f) => ({ name: f[0], uid: toId(f[2]), gid: toId(f[3]), home: f[5] ?? '', shell: f[6] ?? '' }))
    .filter((e) => !Number.isNaN(e.uid));
}

export function parseGroup(text: string): GroupEntry[] {
  return lines(text)
    .filter((f) => f[0])
    .map((f) => ({ name: f[0], gid: toId(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) }))
    .filter((e) => !Number.isNaN(e.gid));
}

function numericId(s: string): number | undefined {
  if (!/^-?\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n < 0 || n > MAX_ID) throw berthError('InvalidArgument', `uids and gids must be in range 0-${MAX_ID}`);
  return n;
}

export interface ResolveUserInput {
  /** "", "name", "uid", "name:group", "uid:gid" (docker's --user / image User). */
  user?: string;
  /** --group-add: group names or numeric gids. */
  groupAdd?: readonly string[];
  /**
   * Add the groups /etc/group lists the user in even when a group is given
   * (containerd's CRI rule, WithAdditionalGIDs); runc and docker add them
   * only to a user given without a group.
   */
  memberGroupsAlways?: boolean;
  passwd?: string;
  group?: string;
}

export function resolveUser(input: ResolveUserInput): ResolvedUser {
  const spec = input.user ?? '';
  const colon = spec.indexOf(':');
  const userArg = colon >= 0 ? spec.slice(0, colon) : spec;
  const groupArg = colon >= 0 ? spec.slice(colon + 1) : '';
  const passwd = input.passwd === undefined ? undefined : parsePasswd(input.passwd);
  const groups = input.group === undefined ? undefined : parseGroup(input.group);

  const result: ResolvedUser = { uid: 0, gid: 0, additionalGids: [], home: '/' };
  let userName: string | undefined;
  if (userArg !== '') {
    const uidArg = numericId(userArg);
    const entry = passwd?.find((u) => u.name === userArg || (uidArg !== undefined && u.uid === uidArg));
    if (entry) {
      userName = entry.name;
      result.uid = entry.uid;
      if (!Number.isNaN(entry.gid)) result.gid = entry.gid;
      if (entry.home) result.home = entry.home;
    } else if (uidArg !== undefined) {
      result.uid = uidArg;
    } else {
      throw berthError('InvalidArgument', `unable to find user ${userArg}: no matching entries in passwd file`);
    }
  } else {
    const root = passwd?.find((u) => u.uid === 0);
    if (root) {
      userName = root.name;
      if (root.home) result.home = root.home;
    }
  }

  if (groupArg !== '') {
    const gidArg = numericId(groupArg);
    const entry = groups?.find((g) => g.name === groupArg || (gidArg !== undefined && g.gid === gidArg));
    if (entry) result.gid = entry.gid;
    else if (gidArg !== undefined) result.gid = gidArg;
    else throw berthError('InvalidArgument', `unable to find group ${groupArg}: no matching entries in group file`);
  }
  if ((groupArg === '' || input.memberGroupsAlways) && userName !== undefined && groups) {
    // supplementary groups only in the implicit form, as runc
    for (const g of groups) if (g.members.includes(userName)) result.additionalGids.push(g.gid);
  }

  for (const ga of input.groupAdd ?? []) {
    const gid = numericId(ga);
    if (gid !== undefined) {
      result.additionalGids.push(gid);
      continue;
    }
    const entry = groups?.find((g) => g.name === ga);
    if (!entry) throw berthError('InvalidArgument', `unable to find group ${ga}: no matching entries in group file`);
    result.additionalGids.push(entry.gid);
  }
  result.additionalGids = [...new Set(result.additionalGids)];
  return result;
}
