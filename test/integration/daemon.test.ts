import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli, startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

describe('berthd', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => d?.stop());

  it('answers the CLI on its socket, which only root can reach', async () => {
    const r = await d.cli(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /API version:\s+1/);
    assert.equal(statSync(d.socket).mode & 0o777, 0o600);
  });

  it('refuses a second daemon on the same root', () => {
    const r = spawnSync(path.join(import.meta.dirname, '../../bin/berthd'), ['--root', d.root, '--state', d.state + '2', '--config', '/nonexistent-but-explicit.toml'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    const again = spawnSync(path.join(import.meta.dirname, '../../bin/berthd'), ['--root', d.root, '--state', d.state + '2', '--config', path.join(d.dir, 'none.toml')], { encoding: 'utf8' });
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already running/);
  });

  it('rejects an unknown config key, naming it', () => {
    const cfg = path.join(d.dir, 'bad.toml');
    writeFileSync(cfg, 'version = 1\n[daemon]\nbogus = 1\n');
    const r = spawnSync(path.join(import.meta.dirname, '../../bin/berthd'), ['--root', d.root + 'x', '--state', d.state + 'x', '--config', cfg], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /daemon\.bogus/);
  });

  it('CLI exits 125 with a clear message when no daemon listens', async () => {
    const r = await runCli(['-H', 'unix:///nonexistent/berth.sock', 'version']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /is the daemon running/);
  });
});
