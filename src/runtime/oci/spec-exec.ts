import { berthError } from '../../core/errors.ts';
import { containerCapabilities } from './caps.ts';
import type { Capabilities, Process, Spec } from './oci-types.ts';
import { mergeEnv } from './spec.ts';

/**
 * The process of an exec in a running container, as moby builds it: a copy
 * of the container's process (capabilities, rlimits, no-new-privileges; the
 * runtime applies the container's seccomp profile) with the exec's own
 * args, env (the container's, TERM=xterm with a tty, then the exec's),
 * working dir and user. Pure: the caller resolves an exec user against the
 * container's /etc/passwd with `resolveUser`.
 *
 *   buildExecProcess(spec, { cmd: ['sh'], tty: true, env: ['A=1'] })
 */
export interface ExecOptions {
  cmd: string[];
  env?: string[];
  tty?: boolean;
  workingDir?: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  /** docker exec --privileged: every capability berthd holds. */
  privileged?: boolean;
  availableCapabilities?: readonly string[];
}

function capsFor(base: Capabilities | undefined, uid: number, privileged: boolean, available?: readonly string[]): Capabilities | undefined {
  const bounding = privileged ? containerCapabilities({ privileged: true, available }) : base?.bounding;
  if (!bounding) return base;
  return uid === 0 ? { bounding, effective: [...bounding], permitted: [...bounding] } : { bounding };
}

export function buildExecProcess(spec: Spec, opts: ExecOptions): Process {
  if (!opts.cmd.length || opts.cmd[0] === '') throw berthError('InvalidArgument', 'no command specified');
  const cwd = opts.workingDir || spec.process.cwd || '/';
  if (!cwd.startsWith('/')) throw berthError('InvalidArgument', `the working directory '${cwd}' is invalid, it needs to be an absolute path`);
  const containerEnv = spec.process.env.filter((e) => !e.startsWith('TERM='));
  const env = mergeEnv(mergeEnv(containerEnv, opts.tty ? ['TERM=xterm'] : []), opts.env ?? []);
  const user = opts.user
    ? { uid: opts.user.uid, gid: opts.user.gid, ...(opts.user.additionalGids?.length ? { additionalGids: [...opts.user.additionalGids] } : {}) }
    : { ...spec.process.user };
  const p: Process = {
    ...structuredClone(spec.process),
    terminal: !!opts.tty,
    user,
    args: [...opts.cmd],
    env,
    cwd,
  };
  const caps = capsFor(spec.process.capabilities, user.uid, !!opts.privileged, opts.availableCapabilities);
  if (caps) p.capabilities = caps;
  else delete p.capabilities;
  delete p.consoleSize;
  return p;
}
