import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, busyboxImage, pushToRegistry } from './image-builder.ts';
import type { ImageSpec } from './image-builder.ts';
import { startDaemon, type TestDaemon } from './daemon.ts';
import { randomBridge, randomSubnet } from './network.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

/**
 * A whole engine for container tests: a loopback registry holding a busybox
 * image the test built, and a berthd on its own root, state, bridge and
 * subnets that has pulled it. `stop()` removes every container (so monitors,
 * mounts, netns and veths go), then the daemon, the registry and temp dirs,
 * and unmounts anything still mounted under the daemon's dirs.
 */
export interface Engine {
  d: TestDaemon;
  registry: TestRegistry;
  /** The pulled busybox image reference. */
  image: string;
  bridge: string;
  /** Build another image and push it to the registry (not pulled). */
  push(name: string, spec: ImageSpec): Promise<string>;
  stop(): Promise<void>;
}

export async function startEngine(opts: { imageSpec?: ImageSpec; extraConfig?: string } = {}): Promise<Engine> {
  const registry = await startRegistry();
  const layoutDir = await mkdtemp(path.join(os.tmpdir(), 'berth-engine-img-'));
  const push = async (name: string, spec: ImageSpec) => {
    const layout = path.join(layoutDir, name.replace(/[^a-z0-9]/g, '_'));
    await buildImage(layout, spec, { tag: '1' });
    const ref = `${registry.host}/test/${name}:1`;
    await pushToRegistry(layout, ref, { tag: '1' });
    return ref;
  };
  const image = await push('busybox', opts.imageSpec ?? busyboxImage());
  const bridge = randomBridge();
  const pool = randomSubnet().replace(/\.0\/24$/, '.0/24');
  const config = `version = 1\n[network]\nbridge = "${bridge}"\nsubnet = "${randomSubnet()}"\nsubnet_pool = "${pool}"\npool_size = 26\nfallback_dns = ["192.0.2.53"]\n${opts.extraConfig ?? ''}`;
  const d = await startDaemon({ config });
  const pulled = await d.cli(['pull', image]);
  if (pulled.code !== 0) {
    await d.stop();
    await registry.stop();
    throw new Error(`pull failed: ${pulled.stderr}`);
  }
  return {
    d,
    registry,
    image,
    bridge,
    push,
    async stop() {
      if (d.proc.exitCode === null && d.proc.signalCode === null) {
        const ids = (await d.cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
        if (ids.length) await d.cli(['rm', '-f', '-v', ...ids]);
      }
      if (d.proc.exitCode === null && d.proc.signalCode === null) {
        const exited = new Promise((r) => d.proc.once('exit', r));
        d.proc.kill('SIGTERM');
        await exited;
      }
      // Whatever a failed test left running: its containers, mounts and bridge.
      await reapTasks(d.state);
      // Unmount before the temp dirs are removed, so removal never reaches into a mount.
      await unmountUnder(d.dir);
      await new Promise((r) => execFile('ip', ['link', 'del', bridge], () => r(undefined)));
      await d.stop().catch(() => {});
      await registry.stop();
      await rm(layoutDir, { recursive: true, force: true });
    },
  };
}

/** Kill and delete every task (container and its monitor) left under a daemon's state dir. */
export async function reapTasks(state: string): Promise<void> {
  const tasksDir = path.join(state, 'tasks');
  for (const ns of await readdir(tasksDir).catch(() => [] as string[])) {
    for (const id of await readdir(path.join(tasksDir, ns)).catch(() => [] as string[])) {
      await new Promise((r) => execFile('runc', ['--root', path.join(state, 'runtime', 'runc', ns), 'delete', '-f', id], () => r(undefined)));
      const pid = Number(await readFile(path.join(tasksDir, ns, id, 'monitor.pid'), 'utf8').catch(() => '0'));
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

/** Unmount whatever a crashed test left mounted under `dir`, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await new Promise((r) => execFile('umount', ['-l', m], () => r(undefined)));
}
