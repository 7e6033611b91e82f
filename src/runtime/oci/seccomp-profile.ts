import { berthError } from '../../core/errors.ts';
import type { Seccomp, SeccompSyscall } from './oci-types.ts';

/**
 * A seccomp profile file as docker, containerd (CRI `Localhost`) and
 * Kubernetes write them: the OCI `linux.seccomp` object, where docker's
 * format may name the syscalls one at a time (`name`) and the
 * architectures through `archMap`. Pure; the caller reads the file.
 *
 *   parseSeccompProfile('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}', 'p.json')
 *
 * Throws InvalidArgument naming the file for text that is not such a profile.
 */
export function parseSeccompProfile(text: string, file: string): Seccomp {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw berthError('InvalidArgument', `seccomp profile "${file}" is not valid JSON: ${(err as Error).message}`);
  }
  const bad = (what: string) => berthError('InvalidArgument', `seccomp profile "${file}": ${what}`);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('not a JSON object');
  const p = raw as Record<string, unknown>;
  if (typeof p.defaultAction !== 'string' || !p.defaultAction.startsWith('SCMP_ACT_')) throw bad('defaultAction must be an SCMP_ACT_ value');
  const out: Seccomp = { defaultAction: p.defaultAction as Seccomp['defaultAction'] };
  if (typeof p.defaultErrnoRet === 'number') out.defaultErrnoRet = p.defaultErrnoRet;
  const arches = new Set<string>();
  if (Array.isArray(p.architectures)) for (const a of p.architectures) if (typeof a === 'string') arches.add(a);
  if (Array.isArray(p.archMap)) {
    for (const m of p.archMap as Array<{ architecture?: unknown; subArchitectures?: unknown }>) {
      if (typeof m?.architecture === 'string') arches.add(m.architecture);
      if (Array.isArray(m?.subArchitectures)) for (const a of m.subArchitectures) if (typeof a === 'string') arches.add(a);
    }
  }
  if (arches.size) out.architectures = [...arches];
  if (Array.isArray(p.flags)) out.flags = p.flags.filter((f): f is string => typeof f === 'string');
  if (p.syscalls !== undefined && p.syscalls !== null) {
    if (!Array.isArray(p.syscalls)) throw bad('syscalls must be a list');
    out.syscalls = p.syscalls.map((s: Record<string, unknown>, i: number): SeccompSyscall => {
      const names = Array.isArray(s?.names) ? s.names.filter((n): n is string => typeof n === 'string') : typeof s?.name === 'string' ? [s.name] : [];
      if (!names.length) throw bad(`syscalls[${i}] names no syscall`);
      if (typeof s.action !== 'string' || !s.action.startsWith('SCMP_ACT_')) throw bad(`syscalls[${i}].action must be an SCMP_ACT_ value`);
      return {
        names,
        action: s.action as SeccompSyscall['action'],
        ...(typeof s.errnoRet === 'number' ? { errnoRet: s.errnoRet } : {}),
        ...(Array.isArray(s.args) && s.args.length ? { args: s.args as SeccompSyscall['args'] } : {}),
      };
    });
  }
  return out;
}
