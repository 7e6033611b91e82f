import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { binarySize } from '../output.ts';
import { renderTemplate } from '../template.ts';

const specs = {
  format: { type: 'string', short: 'f', doc: 'Format output using a custom template: json, or a Go template' },
} as const;

interface Info {
  [key: string]: unknown;
  serverVersion: string;
  namespace: string;
  root: string;
  containers?: number;
  containersRunning?: number;
  containersPaused?: number;
  containersStopped?: number;
  images?: number;
  storageDriver?: string;
  loggingDriver?: string;
  cgroupDriver?: string;
  cgroupVersion?: string;
  runtimes?: string[];
  defaultRuntime?: string;
  kernelVersion?: string;
  operatingSystem?: string;
  osType?: string;
  architecture?: string;
  cpus?: number;
  memTotal?: number;
  name?: string;
}

/** docker info: the engine's counts and settings and the host it runs on. */
export const command: Command = {
  usage: 'berth info [OPTIONS]',
  summary: 'Display system-wide information',
  flags: specs,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length) {
      env.stderr.write(`"berth info" accepts no arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    return daemonCall(env, async () => {
      const i = await env.client().call<Info>('GET', '/info');
      const format = flags.format as string | undefined;
      if (format === 'json') {
        env.stdout.write(`${JSON.stringify(i)}\n`);
        return 0;
      }
      if (format) {
        env.stdout.write(`${renderTemplate(format, i)}\n`);
        return 0;
      }
      const lines = [
        'Client:',
        ` Version:    0.1.0`,
        ` Node:       ${process.version}`,
        '',
        'Server:',
        ` Containers: ${i.containers ?? 0}`,
        `  Running: ${i.containersRunning ?? 0}`,
        `  Paused: ${i.containersPaused ?? 0}`,
        `  Stopped: ${i.containersStopped ?? 0}`,
        ` Images: ${i.images ?? 0}`,
        ` Server Version: ${i.serverVersion}`,
        ` Storage Driver: ${i.storageDriver ?? ''}`,
        ` Logging Driver: ${i.loggingDriver ?? ''}`,
        ` Cgroup Driver: ${i.cgroupDriver ?? ''}`,
        ` Cgroup Version: ${i.cgroupVersion ?? ''}`,
        ` Runtimes: ${(i.runtimes ?? []).join(' ')}`,
        ` Default Runtime: ${i.defaultRuntime ?? ''}`,
        ` Kernel Version: ${i.kernelVersion ?? ''}`,
        ` Operating System: ${i.operatingSystem ?? ''}`,
        ` OSType: ${i.osType ?? ''}`,
        ` Architecture: ${i.architecture ?? ''}`,
        ` CPUs: ${i.cpus ?? ''}`,
        ` Total Memory: ${i.memTotal ? binarySize(i.memTotal) : ''}`,
        ` Name: ${i.name ?? ''}`,
        ` Berth Root Dir: ${i.root}`,
        ` Namespace: ${i.namespace}`,
      ];
      env.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    });
  },
};
