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

describe('Go template actions docker users write', () => {
  const c = {
    Name: '/web',
    Mounts: [{ Name: 'v1', Destination: '/data' }, { Name: 'v2', Destination: '/logs' }],
    NetworkSettings: { Networks: { bridge: { IPAddress: '10.0.0.2' }, other: { IPAddress: '10.1.0.2' } } },
    Config: { Env: ['A=1', 'B=2'], Labels: { team: 'x' } },
    State: { Running: true, ExitCode: 0 },
  };
  it('ranges over lists and maps, with variables and else', () => {
    assert.equal(renderTemplate('{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}', c), 'v1:/data v2:/logs ');
    assert.equal(renderTemplate('{{range .NetworkSettings.Networks}}{{.IPAddress}};{{end}}', c), '10.0.0.2;10.1.0.2;');
    assert.equal(renderTemplate('{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}', c), 'bridge=10.0.0.2 other=10.1.0.2 ');
    assert.equal(renderTemplate('{{range $i, $e := .Config.Env}}{{$i}}:{{$e}}{{$.Name}} {{end}}', c), '0:A=1/web 1:B=2/web ');
    assert.equal(renderTemplate('{{range .Config.Nothing}}x{{else}}none{{end}}', { Config: { Nothing: [] } }), 'none');
  });
  it('branches with if, else if, else and with', () => {
    assert.equal(renderTemplate('{{if .State.Running}}up{{else}}down{{end}}', c), 'up');
    assert.equal(renderTemplate('{{if .State.ExitCode}}failed{{else if .State.Running}}running{{else}}ok{{end}}', c), 'running');
    assert.equal(renderTemplate('{{with .Config.Labels}}{{.team}}{{end}}|{{with .Config.Labels.owner}}x{{else}}-{{end}}', { Config: { Labels: { team: 'x' } } }), 'x|-');
    assert.equal(renderTemplate('{{if .A}}{{if .B}}ab{{end}}a{{end}}.', { A: 1, B: 0 }), 'a.');
  });
  it('calls functions, pipes and trims', () => {
    assert.equal(renderTemplate('{{join .Config.Env ","}}', c), 'A=1,B=2');
    assert.equal(renderTemplate('{{index .Config.Labels "team"}} {{len .Mounts}}', c), 'x 2');
    assert.equal(renderTemplate('{{.Name | upper}} {{.Config.Env | json}}', c), '/WEB ["A=1","B=2"]');
    assert.equal(renderTemplate('{{printf "%s has %d mounts" .Name (len .Mounts)}}', c), '/web has 2 mounts');
    assert.equal(renderTemplate('a  {{- .Name -}}  b', c), 'a/webb');
    assert.equal(renderTemplate('{{printf "%s!" (.Name | upper)}}', c), '/WEB!');
    assert.throws(() => renderTemplate('{{range .Mounts}}{{.Nope}}{{end}}', c), /can't evaluate field Nope/);
    assert.throws(() => renderTemplate('{{if .Name}}x', c), /unexpected EOF/);
    assert.throws(() => renderTemplate('{{nosuchfn .Name}}', c), /can't give arguments|not defined/);
  });
});
