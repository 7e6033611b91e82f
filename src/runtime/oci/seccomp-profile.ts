import { berthError } from '../../core/errors.ts';
import type { Seccomp, SeccompAction, SeccompArg, SeccompSyscall } from './oci-types.ts';

/**
 * A seccomp profile file (Kubernetes' Localhost profiles, docker's
 * `--security-opt seccomp=FILE`) as the OCI spec's `linux.seccomp`. Both
 * formats are read: the OCI one (`architectures`, `syscalls[].names`) and
 * docker's (`archMap` with sub-architectures, `syscalls[].name`). Pure: the
 * caller reads the file.
 *
 * Throws InvalidArgument naming `source` for text that is not such a
 * profile.
 *
 *   parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW"}', '/var/lib/kubelet/seccomp/a.json')
 *   // { defaultAction: 'SCMP_ACT_ALLOW' }
 */
export function parseSeccompProfile(text: string, source: string): Seccomp {
  const bad = (why: string) => berthError('InvalidArgument', `seccomp profile "${source}": ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad('not a JSON object');
  const p = doc as Record<string, unknown>;
  const action = (v: unknown, field: string): SeccompAction => {
    if (typeof v !== 'string' || !/^SCMP_ACT_[A-Z_]+$/.test(v)) throw bad(`${field} must be an SCMP_ACT_* action`);
    return v as SeccompAction;
  };
  const out: Seccomp = { defaultAction: action(p.defaultAction, 'defaultAction') };
  if (typeof p.defaultErrnoRet === 'number') out.defaultErrnoRet = p.defaultErrnoRet;
  const arches = new Set<string>();
  if (Array.isArray(p.architectures)) for (const a of p.architectures) if (typeof a === 'string') arches.add(a);
  if (Array.isArray(p.archMap)) {
    for (const m of p.archMap as Array<{ architecture?: unknown; subArchitectures?: unknown }>) {
      if (typeof m?.architecture === 'string') arches.add(m.architecture);
      if (Array.isArray(m?.subArchitectures)) for (const s of m.subArchitectures) if (typeof s === 'string') arches.add(s);
    }
  }
  if (arches.size) out.architectures = [...arches];
  if (Array.isArray(p.flags)) out.flags = p.flags.filter((f): f is string => typeof f === 'string');
  if (p.syscalls !== undefined && !Array.isArray(p.syscalls)) throw bad('syscalls must be a list');
  const syscalls: SeccompSyscall[] = [];
  for (const [i, raw] of ((p.syscalls as unknown[]) ?? []).entries()) {
    const sc = (raw ?? {}) as Record<string, unknown>;
    const names = Array.isArray(sc.names) ? sc.names : typeof sc.name === 'string' ? [sc.name] : [];
    if (!names.length || !names.every((n) => typeof n === 'string' && n)) throw bad(`syscalls[${i}] names no system call`);
    const rule: SeccompSyscall = { names: names as string[], action: action(sc.action, `syscalls[${i}].action`) };
    if (typeof sc.errnoRet === 'number') rule.errnoRet = sc.errnoRet;
    if (Array.isArray(sc.args) && sc.args.length) rule.args = sc.args as SeccompArg[];
    syscalls.push(rule);
  }
  if (syscalls.length) out.syscalls = syscalls;
  return out;
}
