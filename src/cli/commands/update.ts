import type { Resources, RestartPolicy } from '../../core/containers.ts';
import { eachContainer } from '../container-each.ts';
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
  call: (env, id, f) => {
    const resources: Resources = {};
    if (f.memory !== undefined) resources.memory = parseSize(f.memory as string);
    if (f['memory-swap'] !== undefined) resources.memorySwap = f['memory-swap'] === '-1' ? -1 : parseSize(f['memory-swap'] as string);
    if (f.cpus !== undefined) resources.nanoCpus = parseNanoCpus(f.cpus as string);
    if (f['cpu-shares'] !== undefined) resources.cpuShares = f['cpu-shares'] as number;
    if (f['cpu-quota'] !== undefined) resources.cpuQuota = f['cpu-quota'] as number;
    if (f['cpu-period'] !== undefined) resources.cpuPeriod = f['cpu-period'] as number;
    if (f['cpuset-cpus'] !== undefined) resources.cpusetCpus = f['cpuset-cpus'] as string;
    if (f['pids-limit'] !== undefined) resources.pidsLimit = f['pids-limit'] as number;
    const restartPolicy: RestartPolicy | undefined = f.restart !== undefined ? parseRestart(f.restart as string) : undefined;
    return env.client().call('POST', `/containers/${id}/update`, { body: { resources: Object.keys(resources).length ? resources : undefined, restartPolicy } });
  },
});
