import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withConnected, withDisconnected } from './container-networks.ts';

const is = (name: string) => (ref: string) => ref === name;

describe('recorded network connects and disconnects', () => {
  it('adds a further network, refusing one already joined or a mode without networks', () => {
    const a = withConnected({ mode: 'n1', ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }, 'n2', { aliases: ['db'] }, is('n2'), 'c1');
    assert.deepEqual(a.extraNetworks, [{ network: 'n2', aliases: ['db'] }]);
    assert.throws(() => withConnected(a, 'n2', {}, is('n2'), 'c1'), /already exists in network n2/);
    assert.throws(() => withConnected(a, 'n1', {}, is('n1'), 'c1'), /already exists in network n1/);
    assert.throws(() => withConnected({ mode: 'host' }, 'n2', {}, is('n2'), 'c1'), /network mode host/);
    assert.throws(() => withConnected({ mode: 'none' }, 'n2', {}, is('n2'), 'c1'), /network mode none/);
  });

  it('promotes the first further network when the primary one is disconnected, else leaves none until a connect', () => {
    const a = { mode: 'n1', aliases: ['x'], extraNetworks: [{ network: 'n2', aliases: ['db'] }] };
    assert.deepEqual(withDisconnected(a, 'n2', is('n2'), 'c1'), { mode: 'n1', aliases: ['x'], extraNetworks: undefined });
    const promoted = withDisconnected(a, 'n1', is('n1'), 'c1');
    assert.equal(promoted.mode, 'n2');
    assert.deepEqual(promoted.aliases, ['db']);
    const cut = withDisconnected({ mode: 'n1', publishAll: true }, 'n1', is('n1'), 'c1');
    assert.equal(cut.mode, 'none');
    assert.equal(cut.publishAll, undefined);
    assert.deepEqual(withConnected(cut, 'n3', {}, is('n3'), 'c1').mode, 'n3');
    assert.throws(() => withDisconnected({ mode: 'n1' }, 'n9', is('n9'), 'c1'), /not connected to network n9/);
  });
});
