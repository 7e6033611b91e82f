import type { Resources, RestartPolicy } from '../../core/containers.ts';
import { eachContainer } from '../container-each.ts';
import type { FlagValues } from '../flags.ts';
import { parseNanoCpus, parseRestart, parseSize } from '../run-options-parse.ts';

export const command = eachContainer({
  name: 'update',
  usage: 'berth update [OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Update configuration of one or more containers',
  specs: {
    memory: { type: 'string', short: 'm', doc: 'Memory limit' },
    'memory-swap': { type: 'string', doc: 'Swap limit equal to memory plus swap: -1 to enable unlimited swap' },
    cpus: { type: 'string', doc: 'Number of CPUs' },
    'cpu-shares': { type: 'number', short: 'c', doc: 'CPU shares (relative weight)' },
    'cpu-quota': { type: 'number', doc: 'Limit CPU CFS quota' },
    'cpu-period': { type: 'number', doc: 'Limit CPU CFS period' },
    'cpuset-cpus': { type: 'string', doc: 'CPUs in which to allow execution (0-3, 0,1)' },
    'pids-limit': { type: 'number', doc: 'Tune container pids limit (set -1 for unlimited)' },
    restart: { type: 'string', doc: 'Restart policy to apply when a container exits' },
  },
  validate: (f) => void updateBody(f),
  call: (env, id, f) => env.client().call('POST', `/containers/${id}/update`, { body: updateBody(f) }),
});

/** The update request; a value that does not parse names its flag, as docker's CLI does. */
function updateBody(f: FlagValues): { resources?: Resources; restartPolicy?: RestartPolicy } {
  const parsed = <T>(flag: string, value: unknown, parse: (s: string) => T): T => {
    try {
      return parse(value as string);
    } catch (err) {
      throw new Error(`invalid argument "${String(value)}" for "${flag}" flag: ${(err as Error).message}`);
    }
  };
  const resources: Resources = {};
  if (f.memory !== undefined) resources.memory = parsed('-m, --memory', f.memory, parseSize);
  if (f['memory-swap'] !== undefined) resources.memorySwap = f['memory-swap'] === '-1' ? -1 : parsed('--memory-swap', f['memory-swap'], parseSize);
  if (f.cpus !== undefined) resources.nanoCpus = parsed('--cpus', f.cpus, parseNanoCpus);
  if (f['cpu-shares'] !== undefined) resources.cpuShares = f['cpu-shares'] as number;
  if (f['cpu-quota'] !== undefined) resources.cpuQuota = f['cpu-quota'] as number;
  if (f['cpu-period'] !== undefined) resources.cpuPeriod = f['cpu-period'] as number;
  if (f['cpuset-cpus'] !== undefined) resources.cpusetCpus = f['cpuset-cpus'] as string;
  if (f['pids-limit'] !== undefined) resources.pidsLimit = f['pids-limit'] as number;
  const restartPolicy = f.restart !== undefined ? parsed('--restart', f.restart, parseRestart) : undefined;
  return { resources: Object.keys(resources).length ? resources : undefined, restartPolicy };
}
