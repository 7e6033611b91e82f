import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatRows, renderTemplate } from './template.ts';

describe('--format templates', () => {
  it('renders fields, nested fields, json and Go-style maps', () => {
    const o = { Repository: 'busybox', Tag: 'latest', Config: { Cmd: ['sh'], Labels: { b: '2', a: '1' } } };
    assert.equal(renderTemplate('{{.Repository}}:{{.Tag}}', o), 'busybox:latest');
    assert.equal(renderTemplate('{{json .Config.Cmd}}', o), '["sh"]');
    assert.equal(renderTemplate('{{.Config.Labels}}', o), 'map[a:1 b:2]');
    assert.equal(renderTemplate('{{upper .Tag}}\\t{{ .Repository }}', o), 'LATEST\tbusybox');
    assert.throws(() => renderTemplate('{{.Nope}}', o), /can't evaluate field Nope/);
  });
  it('prints json lines and aligned tables', () => {
    const rows = [{ A: 'x', B: 'long value' }, { A: 'yyyy', B: 'b' }];
    assert.equal(formatRows('json', rows), '{"A":"x","B":"long value"}\n{"A":"yyyy","B":"b"}\n');
    assert.equal(formatRows('table {{.A}}\\t{{.B}}', rows, { A: 'COL A', B: 'COL B' }), 'COL A   COL B\nx       long value\nyyyy    b\n');
  });
});

it('a missing map key prints <no value>; a missing field is an error', () => {
  const o = { Name: 'n', Labels: { env: 'prod' } };
  assert.equal(renderTemplate('{{.Labels.env}} {{.Labels.team}}', o), 'prod <no value>');
  assert.throws(() => renderTemplate('{{.Labels.env.Deeper}}', o), /can't evaluate field Deeper/);
  assert.throws(() => renderTemplate('{{.Missing}}', o), /can't evaluate field Missing/);
});
