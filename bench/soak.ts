import { parseArgs } from 'node:util';
import { startEngine } from '../test/helpers/engine.ts';
import { cgroupConfig, cycle, cycleKinds, formatProbe, growth, probe, removeCgroupParent, uniqueCgroupParent, type CycleKind } from '../test/helpers/leak-probe.ts';

/**
 * Soak: thousands of container lives against one berthd, checking that
 * nothing a removed container had stays behind (mounts, cgroups, netns,
 * veths, iptables rules, files under root and state, monitors) and how
 * berthd's fds and RSS move. Prints the counts every --every cycles and a
 * verdict line at the end; exits 1 when something grew.
 *
 *   node bench/soak.ts [N] [--kinds none,bridge,...] [--every 200]
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { kinds: { type: 'string', default: cycleKinds.join(',') }, every: { type: 'string', default: '200' } },
});
const n = Number(positionals[0] ?? 2000);
const every = Number(values.every);
const kinds = values.kinds.split(',') as CycleKind[];
for (const k of kinds) if (!cycleKinds.includes(k)) throw new Error(`unknown kind "${k}" (want ${cycleKinds.join(', ')})`);
// Tolerated fd growth: Node opens a few handles lazily (a worker, a pipe).
const fdTolerance = 4;

const parent = uniqueCgroupParent();
const e = await startEngine({ extraConfig: cgroupConfig(parent) });
let failed = false;
try {
  // One of each kind first, so what is created once and kept is in the baseline.
  for (const k of kinds) await cycle(e, k);
  const base = await probe(e, parent);
  console.log(`soak: ${n} cycles per kind of ${kinds.join(', ')}; berthd pid ${e.d.proc.pid}`);
  console.log(`baseline      ${formatProbe(base)}`);
  let last = base;
  for (const k of kinds) {
    const started = Date.now();
    for (let i = 1; i <= n; i++) {
      await cycle(e, k);
      if (i % every === 0 || i === n) {
        last = await probe(e, parent);
        const rate = ((Date.now() - started) / i).toFixed(0);
        console.log(`${k.padEnd(9)} ${String(i).padStart(5)}  ${formatProbe(last)}  ${rate}ms/cycle`);
      }
    }
  }
  const grew = growth(base, last);
  if (last.fds > base.fds + fdTolerance) grew.push(`fds ${base.fds} -> ${last.fds}`);
  failed = grew.length > 0;
  const rss = `rss ${(base.rssKiB / 1024).toFixed(1)} -> ${(last.rssKiB / 1024).toFixed(1)} MiB`;
  console.log(failed ? `VERDICT: LEAK after ${n} x [${kinds.join(', ')}]: ${grew.join('; ')} (${rss})` : `VERDICT: OK, nothing grew after ${n} x [${kinds.join(', ')}] (fds ${base.fds} -> ${last.fds}, ${rss})`);
} finally {
  await e.stop();
  await removeCgroupParent(parent);
}
process.exitCode = failed ? 1 : 0;
