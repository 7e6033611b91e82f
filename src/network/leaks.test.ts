import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { staleRulesScript } from './leaks.ts';

const save = String.raw`*nat
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-aaa - [0:0]
:CNI-bbb - [0:0]
:CNI-DN-aaa - [0:0]
-A POSTROUTING -s 10.1.0.2/32 -m comment --comment "name: \"berth-111111111111\" id: \"dead\"" -j CNI-aaa
-A POSTROUTING -s 10.1.0.3/32 -m comment --comment "name: \"berth-111111111111\" id: \"live\"" -j CNI-bbb
-A POSTROUTING -s 10.9.0.3/32 -m comment --comment "name: \"other\" id: \"dead\"" -j CNI-ccc
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"berth-111111111111\" id: \"dead\"" -m multiport --dports 8080 -j CNI-DN-aaa
-A CNI-aaa -d 10.1.0.0/24 -m comment --comment "name: \"berth-111111111111\" id: \"dead\"" -j ACCEPT
-A CNI-DN-aaa -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80
COMMIT
`;

describe('staleRulesScript', () => {
  it('deletes jumps and chains of dead containers on berth networks only', () => {
    const script = staleRulesScript(save, 'nat', new Set(['berth-111111111111']), (id) => id === 'live');
    const lines = script.trim().split('\n');
    assert.equal(lines[0], '*nat');
    assert.ok(lines.includes(String.raw`-D POSTROUTING -s 10.1.0.2/32 -m comment --comment "name: \"berth-111111111111\" id: \"dead\"" -j CNI-aaa`));
    assert.ok(lines.some((l) => l.startsWith('-D CNI-HOSTPORT-DNAT')));
    assert.ok(lines.includes('-F CNI-aaa') && lines.includes('-X CNI-aaa') && lines.includes('-X CNI-DN-aaa'));
    assert.ok(!lines.some((l) => l.includes('CNI-bbb') || l.includes('CNI-ccc') || l.startsWith('-D CNI-aaa')));
    assert.equal(lines.at(-1), 'COMMIT');
  });
  it('is empty when nothing is stale', () => {
    assert.equal(staleRulesScript(save, 'nat', new Set(['berth-222222222222']), () => false), '');
    assert.equal(staleRulesScript(save, 'filter', new Set(['berth-111111111111']), () => false), '');
  });
});
