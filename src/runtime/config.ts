import type { ConfigSection, SectionValues } from '../core/config.ts';

/** The [runtime] section: how containers are run. */
export const runtimeSection: ConfigSection = {
  name: 'runtime',
  doc: 'containers: the OCI runtime, cgroups and logs',
  fields: {
    default_runtime: { type: 'string', default: 'runc', doc: 'OCI runtime used when a container names none; crun is supported but refuses hybrid cgroup hosts' },
    runc_path: { type: 'string', default: 'runc', doc: 'binary of the "runc" runtime (looked up in PATH)' },
    crun_path: { type: 'string', default: 'crun', doc: 'binary of the "crun" runtime (looked up in PATH)' },
    cgroup_parent: { type: 'string', default: '/berth', doc: 'cgroup under which every container gets its own (cgroupfs driver)' },
    log_max_size: { type: 'number', default: 0, doc: 'default json-file log size in bytes before rotation; 0 never rotates (docker default)' },
    log_max_files: { type: 'number', default: 1, doc: 'default number of json-file log files kept, the live one included' },
    init_path: { type: 'string', default: '', doc: 'init binary for --init; empty uses the bundled berth-init' },
  },
};

export interface RuntimeSettings {
  defaultRuntime: string;
  runtimes: Record<string, string>;
  cgroupParent: string;
  logMaxSize: number;
  logMaxFiles: number;
  initPath?: string;
}

export function runtimeSettings(v: SectionValues | undefined): RuntimeSettings {
  const s = v ?? {};
  return {
    defaultRuntime: (s.default_runtime as string) ?? 'runc',
    runtimes: { runc: (s.runc_path as string) ?? 'runc', crun: (s.crun_path as string) ?? 'crun' },
    cgroupParent: (s.cgroup_parent as string) ?? '/berth',
    logMaxSize: (s.log_max_size as number) ?? 0,
    logMaxFiles: (s.log_max_files as number) ?? 1,
    initPath: (s.init_path as string) || undefined,
  };
}
