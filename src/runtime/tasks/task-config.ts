import type { ConfigSection, SectionValues } from '../../core/config.ts';
import { berthError } from '../../core/errors.ts';
import { defaultInitPath, defaultMonitorPath } from './monitor.ts';

/**
 * The [runtime] config section: which OCI runtime runs containers and where
 * the native helpers are. Runtimes are chosen by name; a container may ask
 * for any configured one.
 */
export const runtimeSection: ConfigSection = {
  name: 'runtime',
  doc: 'OCI runtimes and the per-container monitor',
  fields: {
    default_runtime: { type: 'string', default: 'runc', doc: 'runtime used when a container names none; crun is faster but needs a pure cgroup v2 host' },
    runtimes: {
      type: 'string[]',
      default: ['runc=runc', 'crun=crun'],
      doc: 'available runtimes as "name=binary" (a bare binary name is looked up in PATH)',
    },
    monitor_path: { type: 'string', default: '', doc: 'berth-monitor binary; empty = native/build/berth-monitor of this installation' },
    init_path: { type: 'string', default: '', doc: 'init binary bind-mounted for --init; empty = native/build/berth-init of this installation' },
    cgroup_parent: { type: 'string', default: '/berth', doc: 'cgroup under which every container gets its own (cgroupfs driver)' },
    log_max_size: { type: 'number', default: 0, doc: 'default json-file log size in bytes before rotation; 0 never rotates (docker\'s default)' },
    log_max_files: { type: 'number', default: 1, doc: 'default number of json-file log files kept, the live one included' },
  },
};

export interface RuntimeConfig {
  defaultRuntime: string;
  /** name -> binary */
  runtimes: Record<string, string>;
  monitorPath: string;
  initPath: string;
  cgroupParent: string;
  logMaxSize: number;
  logMaxFiles: number;
}

export function runtimeConfig(v: SectionValues): RuntimeConfig {
  const runtimes: Record<string, string> = {};
  for (const entry of v.runtimes as string[]) {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    const bin = eq < 0 ? entry : entry.slice(eq + 1);
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(name) || !bin) throw berthError('InvalidArgument', `config: runtime.runtimes: bad entry "${entry}" (want "name=binary")`);
    runtimes[name] = bin;
  }
  const defaultRuntime = v.default_runtime as string;
  if (!(defaultRuntime in runtimes)) {
    throw berthError('InvalidArgument', `config: runtime.default_runtime "${defaultRuntime}" is not in runtime.runtimes`);
  }
  return {
    defaultRuntime,
    runtimes,
    monitorPath: (v.monitor_path as string) || defaultMonitorPath,
    initPath: (v.init_path as string) || defaultInitPath,
    cgroupParent: (v.cgroup_parent as string) || '/berth',
    logMaxSize: (v.log_max_size as number) ?? 0,
    logMaxFiles: (v.log_max_files as number) || 1,
  };
}
