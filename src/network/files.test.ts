import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostModeHosts, hostsContent, parseResolvConf, resolvConfContent } from './files.ts';

describe('hosts file', () => {
  it('lists localhost, extra hosts, the container and its peers', () => {
    const text = hostsContent({
      hostname: 'abc123',
      ips: ['10.1.0.2'],
      ownNames: ['web', 'abc123'],
      peers: [{ ip: '10.1.0.3', names: ['db', 'database', 'db'] }],
      extraHosts: ['gw:10.1.0.1', 'v6=[::1]'],
    });
    const lines = text.trim().split('\n');
    assert.equal(lines[0], '127.0.0.1\tlocalhost');
    assert.ok(lines.includes('10.1.0.1\tgw'));
    assert.ok(lines.includes('::1\tv6'));
    assert.ok(lines.includes('10.1.0.2\tabc123 web'));
    assert.ok(lines.includes('10.1.0.3\tdb database'));
  });
  it('keeps the host file in host mode', () => {
    assert.equal(hostModeHosts('127.0.0.1 localhost\n\n', ['x:1.2.3.4']), '127.0.0.1 localhost\n1.2.3.4\tx\n');
  });
  it('rejects a malformed --add-host', () => {
    assert.throws(() => hostsContent({ hostname: 'h', ips: [], ownNames: [], peers: [], extraHosts: ['nocolon'] }));
  });
});

describe('resolv.conf', () => {
  const fallback = ['192.0.2.1'];
  it('copies the host servers, search and options', () => {
    const host = 'nameserver 10.0.0.2\nsearch example.org\noptions ndots:2\n';
    assert.equal(resolvConfContent({ host, fallback }), 'search example.org\nnameserver 10.0.0.2\noptions ndots:2\n');
    assert.deepEqual(parseResolvConf(host).nameservers, ['10.0.0.2']);
  });
  it('replaces a local stub with its upstream servers', () => {
    const host = 'nameserver 127.0.0.53\nsearch lan\n';
    const stub = 'nameserver 10.9.9.9\nsearch lan\n';
    assert.equal(resolvConfContent({ host, stubUpstream: stub, fallback }), 'search lan\nnameserver 10.9.9.9\n');
  });
  it('falls back when only loopback servers are left', () => {
    assert.equal(resolvConfContent({ host: 'nameserver 127.0.0.1\n', fallback }), 'nameserver 192.0.2.1\n');
  });
  it('keeps loopback servers for host networking', () => {
    assert.equal(resolvConfContent({ host: 'nameserver 127.0.0.53\n', fallback, hostNetwork: true }), 'nameserver 127.0.0.53\n');
  });
  it('applies --dns, --dns-search and --dns-option', () => {
    const out = resolvConfContent({ host: 'nameserver 10.0.0.2\nsearch a\noptions x\n', dns: ['10.5.5.5'], dnsSearch: ['b.example'], dnsOptions: ['ndots:1'], fallback });
    assert.equal(out, 'search b.example\nnameserver 10.5.5.5\noptions ndots:1\n');
    assert.equal(resolvConfContent({ host: 'nameserver 10.0.0.2\nsearch a\n', dnsSearch: ['.'], fallback }), 'nameserver 10.0.0.2\n');
  });
});
