import { berthError } from '../core/errors.ts';
import type { ImageConfig } from './types.ts';

/**
 * Dockerfile instructions accepted by `import --change` (docker's list):
 * CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
 * WORKDIR. Exec form (`CMD ["sh"]`) or shell form (`CMD sh -c x`, run by
 * /bin/sh -c). Pure: no I/O.
 */
export function applyChanges(config: ImageConfig, changes: string[]): void {
  const c = (config.config ??= {});
  for (const raw of changes) {
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(raw);
    if (!m) throw berthError('InvalidArgument', `invalid change "${raw}": expected INSTRUCTION ARGUMENTS`);
    const instr = m[1].toUpperCase();
    const arg = m[2].trim();
    switch (instr) {
      case 'CMD':
        c.Cmd = execOrShell(arg);
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = execOrShell(arg);
        break;
      case 'ENV':
        for (const [k, v] of keyValues(arg, 'ENV')) {
          c.Env = (c.Env ?? []).filter((e) => !e.startsWith(`${k}=`)).concat(`${k}=${v}`);
        }
        break;
      case 'LABEL':
        for (const [k, v] of keyValues(arg, 'LABEL')) c.Labels = { ...c.Labels, [k]: v };
        break;
      case 'EXPOSE':
        for (const p of arg.split(/\s+/)) c.ExposedPorts = { ...c.ExposedPorts, [p.includes('/') ? p : `${p}/tcp`]: {} };
        break;
      case 'VOLUME':
        for (const v of arg.startsWith('[') ? (jsonArray(arg) ?? []) : arg.split(/\s+/)) c.Volumes = { ...c.Volumes, [v]: {} };
        break;
      case 'WORKDIR':
        c.WorkingDir = arg;
        break;
      case 'USER':
        c.User = arg;
        break;
      case 'STOPSIGNAL':
        c.StopSignal = arg;
        break;
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), arg];
        break;
      default:
        throw berthError('InvalidArgument', `invalid change "${raw}": ${instr} is not one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR`);
    }
  }
}

function jsonArray(s: string): string[] | undefined {
  try {
    const v = JSON.parse(s) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

function execOrShell(arg: string): string[] {
  return (arg.startsWith('[') ? jsonArray(arg) : undefined) ?? ['/bin/sh', '-c', arg];
}

function unquote(s: string): string {
  return /^".*"$/.test(s) || /^'.*'$/.test(s) ? s.slice(1, -1) : s;
}

function keyValues(arg: string, instr: string): [string, string][] {
  if (!arg.includes('=')) {
    const sp = arg.search(/\s/);
    if (sp < 0) throw berthError('InvalidArgument', `${instr} needs a value: "${arg}"`);
    return [[arg.slice(0, sp), arg.slice(sp + 1).trim()]];
  }
  const out: [string, string][] = [];
  for (const m of arg.matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) out.push([unquote(m[1]), unquote(m[2])]);
  return out;
}
