import type { ImageConfigFields } from '../core/images.ts';
import type { CommandForm, Instruction } from './dockerfile.ts';
import { flagValue, parseError } from './dockerfile.ts';
import { processHeredoc, processWord, processWords, type Lookup, WordError } from './shell-words.ts';

/**
 * The steps that change only an image's config (ENV, LABEL, CMD,
 * ENTRYPOINT, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL,
 * ONBUILD, MAINTAINER), applied to a copy of the runnable config, with the
 * history text docker's legacy builder writes (`/bin/sh -c #(nop)  ENV
 * A=1`). Pure; expansion uses the stage's ENV, then its ARGs.
 */

export const DEFAULT_SHELL = ['/bin/sh', '-c'];
/** What RUN gets as PATH when the image sets none, as Docker's builder does. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface StepScope {
  escape: string;
  lookup: Lookup;
  /** Names looked up by the step (for the cache key). */
  used: Set<string>;
  shell: string[];
  /** Whether this stage's Dockerfile set CMD already (ENTRYPOINT clears an inherited one). */
  cmdSet?: boolean;
}

export interface ConfigStepResult {
  config: ImageConfigFields;
  /** The history text. */
  createdBy: string;
  shell?: string[];
  author?: string;
}

export function expandWord(ins: Instruction, word: string, scope: StepScope): string {
  try {
    return processWord(word, scope.lookup, scope.escape, scope.used);
  } catch (err) {
    if (err instanceof WordError) throw parseError(ins.pos, err.message, err);
    throw err;
  }
}

/** A heredoc's content with its variables expanded, quotes kept (as a shell expands an unquoted heredoc). */
export function expandHeredoc(ins: Instruction, content: string, scope: StepScope): string {
  try {
    return processHeredoc(content, scope.lookup, scope.escape, scope.used);
  } catch (err) {
    if (err instanceof WordError) throw parseError(ins.pos, err.message, err);
    throw err;
  }
}

export function expandWords(ins: Instruction, s: string, scope: StepScope): string[] {
  try {
    return processWords(s, scope.lookup, scope.escape, scope.used);
  } catch (err) {
    if (err instanceof WordError) throw parseError(ins.pos, err.message, err);
    throw err;
  }
}

/** Env list with `key` set to `value` (replacing an earlier value, keeping its place). */
export function setEnv(env: string[] | undefined, key: string, value: string): string[] {
  const out = [...(env ?? [])];
  const i = out.findIndex((e) => e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')) === key);
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

export function envLookup(env: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

/** A command as the image config stores it: exec form as written, shell form through the shell. */
export function commandArgs(cmd: CommandForm, shell: string[]): string[] {
  return cmd.json ? cmd.args : [...shell, cmd.shell];
}

/** Docker's duration syntax (`30s`, `1m30s`, `500ms`, `1h`) in nanoseconds. */
export function parseDuration(s: string): number | undefined {
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return s === '0' ? 0 : undefined;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * unit[m[2]];
  return Math.round(total);
}

const nop = (shell: string[], text: string) => `${shell.join(' ')} #(nop) ${text}`;

export function applyConfigStep(ins: Instruction, base: ImageConfigFields, scope: StepScope): ConfigStepResult {
  const config: ImageConfigFields = structuredClone(base);
  const sh = scope.shell;
  switch (ins.kind) {
    case 'ENV': {
      const parts: string[] = [];
      // Each pair sees the ones before it on the same line (Docker expands against the env as it grows).
      let env = config.Env;
      const local = envLookup(env);
      const lookup: Lookup = (n) => (local.has(n) ? local.get(n) : scope.lookup(n));
      for (const { key, value } of ins.pairs) {
        const k = expandWord(ins, key, { ...scope, lookup });
        const v = expandWord(ins, value, { ...scope, lookup });
        env = setEnv(env, k, v);
        local.set(k, v);
        parts.push(`${k}=${v}`);
      }
      config.Env = env;
      return { config, createdBy: nop(sh, ` ENV ${parts.join(' ')}`) };
    }
    case 'LABEL': {
      const parts: string[] = [];
      config.Labels = { ...config.Labels };
      for (const { key, value } of ins.pairs) {
        const k = expandWord(ins, key, scope);
        const v = expandWord(ins, value, scope);
        config.Labels[k] = v;
        parts.push(`${k}=${v}`);
      }
      return { config, createdBy: nop(sh, ` LABEL ${parts.join(' ')}`) };
    }
    case 'CMD': {
      config.Cmd = commandArgs(ins.command, sh);
      return { config, createdBy: nop(sh, ` CMD ${JSON.stringify(config.Cmd)}`) };
    }
    case 'ENTRYPOINT': {
      config.Entrypoint = commandArgs(ins.command, sh);
      // As Docker: a new entrypoint drops the base image's CMD, unless this Dockerfile set one.
      if (!scope.cmdSet) config.Cmd = null;
      return { config, createdBy: nop(sh, ` ENTRYPOINT ${JSON.stringify(config.Entrypoint)}`) };
    }
    case 'WORKDIR': {
      const dir = expandWord(ins, ins.word, scope);
      const joined = dir.startsWith('/') ? dir : `${config.WorkingDir || '/'}/${dir}`;
      config.WorkingDir = normalizeAbs(joined);
      return { config, createdBy: nop(sh, `WORKDIR ${config.WorkingDir}`) };
    }
    case 'USER': {
      config.User = expandWord(ins, ins.word, scope);
      return { config, createdBy: nop(sh, ` USER ${config.User}`) };
    }
    case 'EXPOSE': {
      config.ExposedPorts = { ...config.ExposedPorts };
      const ports: string[] = [];
      for (const w of ins.words) {
        for (const p of expandWords(ins, w, scope)) {
          const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (!m) throw parseError(ins.pos, `EXPOSE: invalid port "${p}" (want PORT[/PROTO] or FROM-TO[/PROTO])`);
          const proto = (m[3] ?? 'tcp').toLowerCase();
          const from = Number(m[1]);
          const to = m[2] ? Number(m[2]) : from;
          if (from < 1 || to > 65535 || to < from) throw parseError(ins.pos, `EXPOSE: invalid port range "${p}"`);
          for (let n = from; n <= to; n++) config.ExposedPorts[`${n}/${proto}`] = {};
          ports.push(`${m[1]}${m[2] ? `-${m[2]}` : ''}/${proto}`);
        }
      }
      return { config, createdBy: nop(sh, ` EXPOSE ${ports.join(' ')}`) };
    }
    case 'VOLUME': {
      config.Volumes = { ...config.Volumes };
      const vols = ins.words.map((w) => expandWord(ins, w, scope));
      for (const v of vols) {
        if (!v.trim()) throw parseError(ins.pos, 'VOLUME: a volume path may not be empty');
        config.Volumes[v] = {};
      }
      return { config, createdBy: nop(sh, ` VOLUME [${vols.join(' ')}]`) };
    }
    case 'STOPSIGNAL': {
      const s = expandWord(ins, ins.word, scope);
      if (!/^(SIG)?[A-Z0-9+-]+$|^\d+$/i.test(s)) throw parseError(ins.pos, `STOPSIGNAL: invalid signal "${s}"`);
      config.StopSignal = s;
      return { config, createdBy: nop(sh, ` STOPSIGNAL ${s}`) };
    }
    case 'HEALTHCHECK': {
      if (ins.none) {
        config.Healthcheck = { Test: ['NONE'] };
        return { config, createdBy: nop(sh, ' HEALTHCHECK NONE') };
      }
      const hc: NonNullable<ImageConfigFields['Healthcheck']> = {
        Test: ins.command!.json ? ['CMD', ...ins.command!.args] : ['CMD-SHELL', ins.command!.shell],
      };
      const dur = (flag: string, field: 'Interval' | 'Timeout' | 'StartPeriod') => {
        const v = flagValue(ins, flag);
        if (v === undefined) return;
        const ns = parseDuration(v);
        if (ns === undefined) throw parseError(ins.pos, `HEALTHCHECK --${flag}: invalid duration "${v}"`);
        if (ns !== 0 && ns < 1e6) throw parseError(ins.pos, `HEALTHCHECK --${flag} cannot be less than 1ms`);
        hc[field] = ns;
      };
      dur('interval', 'Interval');
      dur('timeout', 'Timeout');
      dur('start-period', 'StartPeriod');
      const retries = flagValue(ins, 'retries');
      if (retries !== undefined) {
        if (!/^\d+$/.test(retries)) throw parseError(ins.pos, `HEALTHCHECK --retries: "${retries}" is not a whole number`);
        hc.Retries = Number(retries);
      }
      config.Healthcheck = hc;
      return { config, createdBy: nop(sh, ` HEALTHCHECK &{${JSON.stringify(hc.Test)} ${hc.Interval ?? 0} ${hc.Timeout ?? 0} ${hc.StartPeriod ?? 0} ${hc.Retries ?? 0}}`) };
    }
    case 'SHELL':
      return { config, createdBy: nop(sh, ` SHELL ${JSON.stringify(ins.args)}`), shell: ins.args };
    case 'ONBUILD':
      config.OnBuild = [...(config.OnBuild ?? []), ins.trigger];
      return { config, createdBy: nop(sh, ` ONBUILD ${ins.trigger}`) };
    case 'MAINTAINER': {
      const who = expandWord(ins, ins.word, scope);
      return { config, createdBy: nop(sh, ` MAINTAINER ${who}`), author: who };
    }
    default:
      throw parseError(ins.pos, `${ins.kind} is not a config step`);
  }
}

function normalizeAbs(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}
