import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { natAddScript, natDelScript, natRules, needsLocalnet, portChainOf, type NatAttachment } from './host-nat.ts';
import { staleRulesScript } from './leaks.ts';

const base: NatAttachment = {
  cniName: 'berth-111111111111',
  containerId: 'c0ffee',
  ifName: 'eth0',
  ip: '10.7.0.5',
  subnet: '10.7.0.0/24',
  masquerade: true,
  ports: [],
};
const tag = String.raw`-m comment --comment "name: \"berth-111111111111\" id: \"c0ffee\""`;

describe('host NAT rules', () => {
  it('masquerades outbound traffic only, without ports', () => {
    const { chains, rules } = natRules(base);
    assert.deepEqual(chains, []);
    assert.deepEqual(rules, [`-A POSTROUTING -s 10.7.0.5/32 ! -d 10.7.0.0/24 -m addrtype ! --dst-type MULTICAST ${tag} -j MASQUERADE`]);
    assert.equal(natAddScript({ ...base, masquerade: false }), '', 'an internal network without ports has no rules');
  });

  it('publishes ports through a per-attachment chain, marking hairpin and loopback clients', () => {
    const a = { ...base, ports: [{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }, { hostPort: 5353, containerPort: 53, protocol: 'udp' as const }] };
    const chain = portChainOf(a);
    assert.match(chain, /^BERTH-DN-[0-9a-f]{16}$/);
    assert.ok(chain.length <= 28, 'iptables chain names are at most 28 characters');
    const { rules } = natRules(a);
    assert.ok(rules.includes(`-A ${chain} -s 10.7.0.0/24 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x2000/0x2000`));
    assert.ok(rules.includes(`-A ${chain} -s 127.0.0.0/8 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x2000/0x2000`));
    assert.ok(rules.includes(`-A ${chain} -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.7.0.5:80`));
    assert.ok(rules.includes(`-A ${chain} -p udp -m udp --dport 5353 -j DNAT --to-destination 10.7.0.5:53`));
    for (const hook of ['PREROUTING', 'OUTPUT']) {
      assert.ok(rules.includes(`-A ${hook} -p tcp -m addrtype --dst-type LOCAL -m multiport --dports 8080 ${tag} -j ${chain}`));
      assert.ok(rules.includes(`-A ${hook} -p udp -m addrtype --dst-type LOCAL -m multiport --dports 5353 ${tag} -j ${chain}`));
    }
    assert.ok(rules.includes(`-A POSTROUTING -d 10.7.0.5/32 -m mark --mark 0x2000/0x2000 ${tag} -j MASQUERADE`));
    assert.ok(needsLocalnet(a.ports));
    assert.equal(needsLocalnet([{ hostIp: '192.0.2.1', hostPort: 1, containerPort: 1, protocol: 'tcp' }]), false);
  });

  it('splits long port lists (multiport takes 15) and skips IPv6 host addresses', () => {
    const ports = Array.from({ length: 20 }, (_, i) => ({ hostPort: 9000 + i, containerPort: 9000 + i, protocol: 'tcp' as const }));
    const { rules } = natRules({ ...base, ports: [...ports, { hostIp: '::', hostPort: 7, containerPort: 7, protocol: 'tcp' }] });
    assert.equal(rules.filter((r) => r.startsWith('-A PREROUTING')).length, 2);
    assert.ok(!rules.some((r) => r.includes('--dport 7 ')));
  });

  it('removal deletes the jumps, then flushes and deletes the chain; the sweep finds the same', () => {
    const a = { ...base, ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }] };
    const chain = portChainOf(a);
    const add = natAddScript(a).trim().split('\n');
    assert.deepEqual(add.slice(0, 2), ['*nat', `:${chain} - [0:0]`]);
    assert.equal(add.at(-1), 'COMMIT');
    const del = natDelScript(a).trim().split('\n');
    assert.equal(del.filter((l) => l.startsWith('-D')).length, 4);
    assert.ok(!del.some((l) => l.startsWith(`-D ${chain}`)));
    assert.deepEqual(del.slice(-3), [`-F ${chain}`, `-X ${chain}`, 'COMMIT']);
    // iptables-save shows the rules as they were added: the leak sweep removes them all.
    const save = ['*nat', `:${chain} - [0:0]`, ...natRules(a).rules, 'COMMIT'].join('\n');
    const sweep = staleRulesScript(save, 'nat', new Set([a.cniName]), () => false).trim().split('\n');
    assert.deepEqual(sweep.filter((l) => l.startsWith('-D')).sort(), del.filter((l) => l.startsWith('-D')).sort());
    assert.ok(sweep.includes(`-X ${chain}`));
  });
});
