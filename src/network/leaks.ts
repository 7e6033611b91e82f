import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { hasErrno } from '../core/errors.ts';
import { run } from './exec.ts';
import { allocationOwner, isAllocationFile } from './host-local.ts';

/**
 * Finding what CNI plugins left behind for containers that no longer exist
 * (after a kill -9 of berthd, a lost cache or a failed DEL). The normal
 * path is CNI DEL from the result cache; these sweep what it cannot reach.
 * Only things tagged with one of `networkNames` (berth's CNI names, unique
 * per root) are considered, so other engines' and other roots' rules stay.
 */
const commentPattern = /name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\"/;

/** Shared chains that plugins create once and never remove (berth's own NAT chains are all per container: host-nat.ts). */
function isSharedChain(chain: string): boolean {
  if (chain.startsWith('BERTH-DN-')) return false;
  return chain.startsWith('CNI-HOSTPORT-') || !chain.startsWith('CNI-');
}

/**
 * An iptables-restore script removing rules and per-container chains of
 * dead containers from one table's iptables-save text; '' when nothing to do.
 */
export function staleRulesScript(saveText: string, table: string, networkNames: Set<string>, isLive: (containerId: string) => boolean): string {
  const deletes: string[] = [];
  const chains = new Set<string>();
  let inTable = false;
  const lines = saveText.split('\n');
  const pending: Array<{ chain: string; line: string }> = [];
  for (const line of lines) {
    if (line.startsWith('*')) inTable = line.slice(1).trim() === table;
    if (!inTable || !line.startsWith('-A ')) continue;
    const m = commentPattern.exec(line);
    if (!m || !networkNames.has(m[1]) || isLive(m[2])) continue;
    const chain = line.split(' ')[1];
    pending.push({ chain, line });
    const jump = / -j ((?:CNI|BERTH)-[A-Za-z0-9-]+)/.exec(line);
    if (jump && !isSharedChain(jump[1])) chains.add(jump[1]);
  }
  for (const p of pending) if (!chains.has(p.chain)) deletes.push(`-D${p.line.slice(2)}`);
  if (!deletes.length && !chains.size) return '';
  const out = [`*${table}`, ...deletes];
  for (const c of chains) out.push(`-F ${c}`);
  for (const c of chains) out.push(`-X ${c}`);
  out.push('COMMIT', '');
  return out.join('\n');
}

export async function removeStaleRules(ctx: Ctx, networkNames: Set<string>, isLive: (containerId: string) => boolean, tables = ['nat', 'filter']): Promise<number> {
  let removed = 0;
  // The tables are read side by side: each save is a process, on berthd's start path.
  const saves = await Promise.all(tables.map((table) => run(ctx, 'iptables-save', ['-t', table], { allowFail: true })));
  for (const [i, table] of tables.entries()) {
    const save = saves[i];
    if (save.code !== 0) continue;
    const script = staleRulesScript(save.stdout, table, networkNames, isLive);
    if (!script) continue;
    const r = await run(ctx, 'iptables-restore', ['--noflush', '-w'], { input: script, allowFail: true });
    if (r.code !== 0) ctx.log.warn('removing stale iptables rules failed', { table, stderr: r.stderr.trim() });
    else removed += script.split('\n').filter((l) => l.startsWith('-D') || l.startsWith('-X')).length;
  }
  return removed;
}

/** Remove the host-local allocations (host-local.ts) of dead containers. */
export async function removeStaleAllocations(ipamDir: string, isLive: (containerId: string) => boolean): Promise<string[]> {
  const freed: string[] = [];
  let nets: string[];
  try {
    nets = await readdir(ipamDir);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return freed;
    throw err;
  }
  for (const net of nets) {
    let files: string[];
    try {
      files = await readdir(path.join(ipamDir, net));
    } catch {
      continue;
    }
    for (const f of files) {
      if (!isAllocationFile(f)) continue;
      const p = path.join(ipamDir, net, f);
      const owner = allocationOwner(await readFile(p, 'utf8').catch(() => '')).containerId;
      if (owner && !isLive(owner)) {
        await rm(p, { force: true });
        freed.push(`${net}/${f}`);
      }
    }
  }
  return freed;
}
