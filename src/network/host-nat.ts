import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { PortMapping } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import { run } from './exec.ts';
import { removeStaleRules } from './leaks.ts';

/**
 * A container's NAT rules: outbound masquerading and published ports, the
 * work the bridge plugin's ipMasq and the portmap plugin did, written as
 * one iptables-restore transaction per attachment instead of the 9 + 17
 * separate iptables runs those plugins make (each a process and a full
 * ruleset round trip). Removal is one transaction too.
 *
 * The rules keep the plugins' shape and tags, so the leak sweep
 * (leaks.ts) finds them after a crash like it finds the plugins' rules:
 * - outbound: `POSTROUTING -s IP ! -d SUBNET (not multicast) -j MASQUERADE`
 * - ports: a per-attachment chain `BERTH-DN-<hash>` with portmap's rules
 *   (mark hairpin and localhost clients for masquerading, then DNAT), entered
 *   from PREROUTING and OUTPUT for local destinations on the published
 *   ports, and a POSTROUTING rule masquerading the marked packets.
 * Every rule in a built-in chain carries the bridge plugin's comment
 * `name: "<cniName>" id: "<containerId>"`. Nothing is shared between
 * containers, so two berth roots (or a CNI runtime) on one host never touch
 * each other's rules, and no shared chain is ever declared (a restore
 * flushes a chain it declares).
 *
 * Not done here: portmap's removal of stale UDP conntrack entries (it
 * needs netlink), so attachments publishing UDP ports keep the plugins
 * (conflist.ts `pluginNat`).
 */
export interface NatAttachment {
  /** The network's CNI name (`berth-<id12>`). */
  cniName: string;
  containerId: string;
  ifName: string;
  /** The container's IPv4 address on the network, no prefix. */
  ip: string;
  /** The network's subnet, CIDR. */
  subnet: string;
  /** Outbound masquerading (false on internal networks). */
  masquerade: boolean;
  ports: PortMapping[];
}

/** The mark portmap uses for "masquerade this": one bit, shared meaning. */
const MASQ_MARK = '0x2000/0x2000';
/** iptables' multiport takes at most 15 ports per rule. */
const MULTIPORT_MAX = 15;

export function portChainOf(a: Pick<NatAttachment, 'cniName' | 'containerId' | 'ifName'>): string {
  const h = createHash('sha256').update(`${a.cniName}/${a.containerId}/${a.ifName}`).digest('hex');
  return `BERTH-DN-${h.slice(0, 16)}`;
}

function isIPv4(s: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(s);
}

/** The ports that get rules: IPv4 host addresses only (the networks are IPv4). */
function ipv4Ports(ports: PortMapping[]): PortMapping[] {
  return ports.filter((p) => !p.hostIp || isIPv4(p.hostIp));
}

/** Whether loopback clients can reach some port (then the bridge needs route_localnet). */
export function needsLocalnet(ports: PortMapping[]): boolean {
  return ipv4Ports(ports).some((p) => !p.hostIp || p.hostIp === '0.0.0.0' || p.hostIp.startsWith('127.'));
}

/** The attachment's chains and rules as `-A` lines of the nat table, built-in chains last. Pure. */
export function natRules(a: NatAttachment): { chains: string[]; rules: string[] } {
  const tag = `-m comment --comment "name: \\"${a.cniName}\\" id: \\"${a.containerId}\\""`;
  const rules: string[] = [];
  const chains: string[] = [];
  const ports = ipv4Ports(a.ports);
  if (ports.length) {
    const chain = portChainOf(a);
    chains.push(chain);
    for (const p of ports) {
      const dst = p.hostIp && p.hostIp !== '0.0.0.0' ? ` -d ${p.hostIp}/32` : '';
      const match = `${dst} -p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort}`;
      // Hairpin (a container of the network using the host port) and loopback
      // clients are masqueraded, or replies would bypass the DNAT.
      rules.push(`-A ${chain} -s ${a.subnet}${match} -j MARK --set-xmark ${MASQ_MARK}`);
      if (needsLocalnet([p])) rules.push(`-A ${chain} -s 127.0.0.0/8${match} -j MARK --set-xmark ${MASQ_MARK}`);
      rules.push(`-A ${chain}${match} -j DNAT --to-destination ${a.ip}:${p.containerPort}`);
    }
    for (const proto of ['tcp', 'udp'] as const) {
      const hostPorts = [...new Set(ports.filter((p) => p.protocol === proto).map((p) => p.hostPort))];
      for (let i = 0; i < hostPorts.length; i += MULTIPORT_MAX) {
        const list = hostPorts.slice(i, i + MULTIPORT_MAX).join(',');
        for (const hook of ['PREROUTING', 'OUTPUT']) {
          rules.push(`-A ${hook} -p ${proto} -m addrtype --dst-type LOCAL -m multiport --dports ${list} ${tag} -j ${chain}`);
        }
      }
    }
    rules.push(`-A POSTROUTING -d ${a.ip}/32 -m mark --mark ${MASQ_MARK} ${tag} -j MASQUERADE`);
  }
  if (a.masquerade) rules.push(`-A POSTROUTING -s ${a.ip}/32 ! -d ${a.subnet} -m addrtype ! --dst-type MULTICAST ${tag} -j MASQUERADE`);
  return { chains, rules };
}

/** iptables-restore input adding the attachment's rules; '' when it has none. Pure. */
export function natAddScript(a: NatAttachment): string {
  const { chains, rules } = natRules(a);
  if (!rules.length) return '';
  return ['*nat', ...chains.map((c) => `:${c} - [0:0]`), ...rules, 'COMMIT', ''].join('\n');
}

/** iptables-restore input removing exactly what natAddScript added; '' when nothing. Pure. */
export function natDelScript(a: NatAttachment): string {
  const { chains, rules } = natRules(a);
  if (!rules.length) return '';
  // Jumps go before the chains they enter can be deleted.
  const deletes = rules.filter((r) => !chains.some((c) => r.startsWith(`-A ${c} `))).map((r) => `-D${r.slice(2)}`);
  return ['*nat', ...deletes, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
}

/** The sysctl that lets a bridge route 127.0.0.0/8 (a host bridge gets its own value back at its network's removal). */
export function routeLocalnetPath(bridge: string): string {
  return `/proc/sys/net/ipv4/conf/${bridge}/route_localnet`;
}

/** Apply the attachment's rules; for published loopback ports, let the bridge route 127.0.0.0/8 (as portmap does). */
export async function addNat(ctx: Ctx, a: NatAttachment, bridge: string): Promise<void> {
  const script = natAddScript(a);
  if (!script) return;
  if (needsLocalnet(a.ports)) {
    await writeFile(routeLocalnetPath(bridge), '1').catch((err) => {
      throw berthError('Unknown', `enable route_localnet on bridge ${bridge}: ${(err as Error).message}`, err);
    });
  }
  const r = await run(ctx, 'iptables-restore', ['--noflush', '-w'], { input: script, allowFail: true });
  if (r.code !== 0) throw berthError('Unknown', `add NAT rules of container ${a.containerId.slice(0, 12)} on ${a.cniName}: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

/**
 * Remove the attachment's rules. Idempotent: when the exact removal fails
 * (rules already gone, or the attachment is only partly known) the rules
 * tagged with this container on this network are swept instead.
 */
export async function removeNat(ctx: Ctx, a: NatAttachment | Pick<NatAttachment, 'cniName' | 'containerId'>): Promise<void> {
  if ('ip' in a) {
    const script = natDelScript(a);
    if (!script) return;
    const r = await run(ctx, 'iptables-restore', ['--noflush', '-w'], { input: script, allowFail: true });
    if (r.code === 0) return;
  }
  await removeStaleRules(ctx, new Set([a.cniName]), (id) => id !== a.containerId, ['nat']);
}
