import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { SectionValues } from '../core/config.ts';
import { criConfig } from '../api/cri/config.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { SandboxStore } from '../metadata/sandboxes.ts';
import type { NetworkService } from '../network/types.ts';
import { defaultPausePath } from '../runtime/tasks/monitor.ts';
import { PauseSandboxService } from '../runtime/sandboxes/sandboxes.ts';
import { runtimeConfig } from '../runtime/tasks/task-config.ts';
import { MonitorTaskService } from '../runtime/tasks/tasks.ts';
import { capabilitiesFromMask } from '../runtime/oci/caps.ts';
import { capabilityMask } from './host-facts.ts';

/**
 * Builds the pod sandbox service: records in the metadata database,
 * bundles and the shared pause rootfs under `<state>/sandboxes`, pause
 * processes as monitor tasks (a task service holds no state of its own, so
 * this one sits beside the containers' on the same state dir). Recovery
 * runs with the containers' (see containers-wiring.ts), before the
 * network reconcile that must keep ready sandboxes' networks.
 */
export async function wireSandboxes(opts: { db: MetadataDb; state: string; network: NetworkService; runtime: SectionValues; cri: SectionValues }): Promise<PauseSandboxService> {
  const rt = runtimeConfig(opts.runtime);
  const stateDir = path.join(opts.state, 'sandboxes');
  await mkdir(stateDir, { recursive: true, mode: 0o711 });
  return new PauseSandboxService({
    store: new SandboxStore(opts.db),
    tasks: new MonitorTaskService({ stateDir: opts.state, runtimes: rt.runtimes, defaultRuntime: rt.defaultRuntime, monitorPath: rt.monitorPath }),
    network: opts.network,
    stateDir,
    pausePath: defaultPausePath,
    networkName: criConfig(opts.cri).network || 'bridge',
    cgroupParent: rt.cgroupParent,
    defaultRuntime: rt.defaultRuntime,
    capabilities: capabilitiesFromMask(await capabilityMask()),
  });
}
