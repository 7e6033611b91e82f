import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { rootCtx } from '../../src/core/context.ts';
import { defaultMonitorPath, demux } from '../../src/runtime/tasks/monitor.ts';
import { MonitorTaskService } from '../../src/runtime/tasks/tasks.ts';
import type { TaskStdio } from '../../src/runtime/tasks/tasks.ts';
import type { BundleOptions, TestBundle } from './bundle.ts';
import { makeBundle } from './bundle.ts';

/** Why runtime tests cannot run here, or undefined when they can. */
export function runtimeSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run containers';
  if (!existsSync(defaultMonitorPath)) return 'native/build/berth-monitor is not built (make -C native)';
  if (!existsSync('/bin/busybox')) return 'needs /bin/busybox for the test rootfs';
  return undefined;
}

export interface TaskEnv {
  state: string;
  svc: MonitorTaskService;
  ctx: ReturnType<typeof rootCtx>;
  /** A bundle running `args`; removed at cleanup. */
  bundle(args: string[], opts?: BundleOptions): Promise<TestBundle>;
  /** create + (optionally) start, with a json-file log in the state dir. */
  run(id: string, args: string[], opts?: { stdio?: TaskStdio; start?: boolean; log?: 'json-file' | 'cri' | 'none'; maxSize?: number; maxFiles?: number }): Promise<{ b: TestBundle; logPath: string }>;
  cleanup(): Promise<void>;
}

export async function taskEnv(): Promise<TaskEnv> {
  const state = await mkdtemp(path.join(os.tmpdir(), 'berth-tasks-'));
  const svc = new MonitorTaskService({ stateDir: state });
  const ctx = rootCtx();
  const bundles: TestBundle[] = [];
  const env: TaskEnv = {
    state,
    svc,
    ctx,
    async bundle(args, opts = {}) {
      const b = await makeBundle(args, opts);
      bundles.push(b);
      return b;
    },
    async run(id, args, opts = {}) {
      const b = await env.bundle(args, { tty: opts.stdio?.tty });
      const logPath = path.join(state, 'logs', `${id}.log`);
      const format = opts.log ?? 'json-file';
      await svc.create(ctx, {
        id,
        bundle: b.bundle,
        stdio: opts.stdio,
        log: format === 'none' ? undefined : { path: logPath, format, maxSize: opts.maxSize, maxFiles: opts.maxFiles },
      });
      if (opts.start !== false) await svc.start(ctx, id);
      return { b, logPath };
    },
    async cleanup() {
      for (const ns of await readdir(path.join(state, 'tasks')).catch(() => [] as string[])) {
        for (const id of await readdir(path.join(state, 'tasks', ns)).catch(() => [] as string[])) {
          await svc.delete({ ...ctx, namespace: ns }, id, { force: true }).catch(() => {});
        }
      }
      const cgroupsLeft: string[] = [];
      for (const b of bundles) {
        if (existsSync(path.join('/sys/fs/cgroup/pids', b.cgroup))) cgroupsLeft.push(b.cgroup);
        await b.cleanup();
      }
      const left = await processesMentioning(state);
      await rm(state, { recursive: true, force: true });
      if (left.length) throw new Error(`processes left behind: ${left.join(', ')}`);
      if (cgroupsLeft.length) throw new Error(`cgroups left behind by delete: ${cgroupsLeft.join(', ')}`);
    },
  };
  return env;
}

/** Pids whose command line mentions `text` (monitors of a test's state dir). */
export async function processesMentioning(text: string): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(text)) out.push(Number(p));
  }
  return out;
}

/** Collect a non-tty attach stream into stdout and stderr strings until it ends. */
export async function collect(stream: Duplex): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  await demux(stream, (n, data) => {
    if (n === 1) stdout += data.toString();
    else stderr += data.toString();
  });
  return { stdout, stderr };
}

/** Resolve when `read()` returns text matching `re` (polling; no timing assertions). */
export async function until<T>(read: () => T | Promise<T>, ok: (v: T) => boolean, what: string, limitMs = 20_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function vmRssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}
