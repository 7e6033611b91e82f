import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { criClient } from '../helpers/cri.ts';
import { cliCommand, runProcess } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';

/**
 * ctr's low-level views as berth subcommands (namespace, content, snapshot,
 * task, lease) and the shell completion of `berth completion bash`, against
 * a berthd that has pulled an image and runs a container.
 */
const root = process.getuid?.() === 0;

describe('low-level views and completion', { timeout: 300_000, skip: !root && 'needs root' }, () => {
  let e: Engine;
  let id: string;
  let tmp: string;
  before(async () => {
    e = await startEngine();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-lowlevel-'));
    const run = await e.d.cli(['run', '-d', '--name', 'lowlevel-web', '--network', 'none', e.image, 'sleep', '1000']);
    assert.equal(run.code, 0, run.stderr);
    id = run.stdout.trim();
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** A ctr table's cells, cut where the header's columns start (a cell may hold spaces: "About a minute"). */
  const rows = (out: string, headers: string[]) => {
    const lines = out.split('\n').filter(Boolean);
    const starts = headers.map((h) => lines[0].indexOf(h));
    assert.ok(starts.every((x, i) => x >= 0 && (i === 0 ? x === 0 : x > starts[i - 1])), `headers ${headers.join(', ')} in ${lines[0]}`);
    return lines.map((l) => starts.map((x, i) => l.slice(x, starts[i + 1]).trim()));
  };

  it('lists, creates and removes namespaces, refusing one that holds anything', async () => {
    const ls = await e.d.cli(['namespace', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^NAME +LABELS +\ndefault +\n$/);
    const created = await e.d.cli(['namespace', 'create', 'scratch', 'team=infra', 'tier=low']);
    assert.equal(created.code, 0, created.stderr);
    assert.match((await e.d.cli(['namespace', 'ls'])).stdout, /^NAME +LABELS +\ndefault +\nscratch +team=infra,tier=low \n$/);
    assert.equal((await e.d.cli(['namespace', 'ls', '-q'])).stdout, 'default\nscratch\n');
    // The new namespace is empty: nothing of default's shows there.
    assert.equal((await e.d.cli(['-n', 'scratch', 'ps', '-aq'])).stdout, '');
    assert.equal((await e.d.cli(['-n', 'scratch', 'task', 'ls', '-q'])).stdout, '');

    const dup = await e.d.cli(['namespace', 'create', 'scratch']);
    assert.deepEqual([dup.code, dup.stderr], [1, 'Error response from daemon: namespace "scratch": already exists\n']);
    const bad = await e.d.cli(['namespace', 'create', 'no/slash']);
    assert.deepEqual([bad.code, bad.stderr], [1, 'Error response from daemon: namespace "no/slash": invalid name\n']);
    const busy = await e.d.cli(['namespace', 'rm', 'default']);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /^Error response from daemon: namespace "default" must be empty, but it still has containers, images/);
    const rm = await e.d.cli(['namespace', 'rm', 'scratch']);
    assert.deepEqual([rm.code, rm.stdout], [0, 'scratch\n']);
    assert.equal((await e.d.cli(['namespace', 'ls', '-q'])).stdout, 'default\n');
    const gone = await e.d.cli(['namespace', 'rm', 'scratch']);
    assert.deepEqual([gone.code, gone.stderr], [1, 'Error response from daemon: namespace "scratch": not found\n']);
  });

  it('lists blobs and writes one to stdout', async () => {
    const inspect = JSON.parse((await e.d.cli(['image', 'inspect', e.image])).stdout)[0];
    const manifest = (inspect.RepoDigests[0] as string).split('@')[1];
    const ls = await e.d.cli(['content', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    const table = rows(ls.stdout, ['DIGEST', 'SIZE', 'AGE', 'LABELS']);
    const row = table.find((r) => r[0] === manifest);
    assert.ok(row, `${manifest} not in\n${ls.stdout}`);
    assert.match(row[1], /^\d+(\.\d+)?(B|kB|MB)$/);
    assert.match(row[2], /^(Less than a second|\d+ seconds?|About a minute|\d+ minutes)$/);
    assert.ok((await e.d.cli(['content', 'ls', '-q'])).stdout.split('\n').includes(inspect.Id), 'the config blob is listed');

    const get = await runProcess(...getCommand(['content', 'get', manifest]));
    assert.equal(get.code, 0, get.stderr);
    assert.equal(`sha256:${createHash('sha256').update(get.stdout).digest('hex')}`, manifest);
    assert.equal(JSON.parse(get.stdout).schemaVersion, 2);

    const missing = await e.d.cli(['content', 'get', `sha256:${'0'.repeat(64)}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Error response from daemon: .*not found/);
    const invalid = await e.d.cli(['content', 'rm', 'sha256:nothex']);
    assert.deepEqual([invalid.code, invalid.stderr], [1, 'Error response from daemon: invalid digest "sha256:nothex"\n']);
  });

  /** The berth command line for runProcess, with the test daemon's host. */
  const getCommand = (args: string[]): [string, string[], { env: Record<string, string> }] => {
    const cmd = cliCommand(['-H', `unix://${e.d.socket}`, ...args]);
    return [cmd.file, cmd.args, { env: { ...process.env, ...cmd.env } as Record<string, string> }];
  };

  it("shows snapshots, their usage and mounts, and keeps a container's own", async () => {
    const ls = await e.d.cli(['snapshot', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    const table = rows(ls.stdout, ['KEY', 'PARENT', 'KIND']);
    const mine = table.find((r) => r[0] === id);
    assert.ok(mine, `${id} not in\n${ls.stdout}`);
    assert.equal(mine[2], 'Active');
    assert.match(mine[1], /^sha256:[0-9a-f]{64}$/);
    assert.ok(table.some((r) => r[0] === mine[1] && r[2] === 'Committed'), 'the image layer is a committed snapshot');

    const info = JSON.parse((await e.d.cli(['snapshot', 'info', id])).stdout);
    assert.equal(info.Kind, 'Active');
    assert.equal(info.Name, id);
    assert.equal(info.Parent, mine[1]);
    assert.equal(info.Labels['berth.container'], id);

    const usage = await e.d.cli(['snapshot', 'usage', id]);
    assert.equal(usage.code, 0, usage.stderr);
    assert.match(usage.stdout, new RegExp(`^KEY +SIZE +INODES +\\n${id} +\\d+\\.\\d (B|KiB|MiB) +\\d+ +\\n$`));
    const all = rows((await e.d.cli(['snapshot', 'usage'])).stdout, ['KEY', 'SIZE', 'INODES']);
    assert.equal(all.length, table.length);

    const mounts = await e.d.cli(['snapshot', 'mounts', '/mnt/target', id]);
    assert.equal(mounts.code, 0, mounts.stderr);
    assert.match(mounts.stdout, /^mount -t (overlay overlay|bind \S+) \/mnt\/target -o \S+\n$/);

    const held = await e.d.cli(['snapshot', 'rm', id]);
    assert.equal(held.code, 1);
    assert.match(held.stderr, /in use by container/);
    const parent = await e.d.cli(['snapshot', 'rm', mine[1]]);
    assert.equal(parent.code, 1, 'a snapshot with children stays');
    assert.ok((await e.d.cli(['snapshot', 'ls'])).stdout.includes(id));
    const missing = await e.d.cli(['snapshot', 'info', 'no-such-key']);
    assert.equal(missing.code, 1);
  });

  it("lists tasks and their processes and signals one; lists leases", async () => {
    const pid = (await e.d.cli(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim();
    const ls = await e.d.cli(['task', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^TASK +PID +STATUS +\\n${id} ${pid} +RUNNING +\\n$`));
    const ps = await e.d.cli(['task', 'ps', 'lowlevel-web']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, new RegExp(`^PID +INFO +\\n(\\d+ +- +\\n)*${pid} +- +\\n`));

    const leases = await e.d.cli(['lease', 'ls']);
    assert.equal(leases.code, 0, leases.stderr);
    assert.match(leases.stdout, /^ID +CREATED AT +LABELS +\n/);

    const kill = await e.d.cli(['task', 'kill', '-s', 'SIGKILL', id]);
    assert.equal(kill.code, 0, kill.stderr);
    assert.equal((await e.d.cli(['wait', id])).stdout, '137\n');
    assert.equal((await e.d.cli(['task', 'ls', '-q'])).stdout, '');
    const stopped = await e.d.cli(['task', 'kill', id]);
    assert.equal(stopped.code, 1);
  });

  it("lists a pod sandbox's pause process among the tasks of k8s.io", async () => {
    const cri = criClient(path.join(e.d.state, 'cri.sock'));
    let pod: string | undefined;
    try {
      const config = { metadata: { name: 'lowlevel-pod', uid: 'uid-lowlevel-pod', namespace: 'default', attempt: 0 }, linux: { security_context: { namespace_options: { network: 'NODE' } } } };
      pod = (await cri.runtime('RunPodSandbox', { config })).pod_sandbox_id as string;
      const pid = JSON.parse((await cri.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info.info).pid;
      assert.ok(pid > 0);
      const ls = await e.d.cli(['-n', 'k8s.io', 'task', 'ls']);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, new RegExp(`^TASK +PID +STATUS +\\n${pod} ${pid} +RUNNING +\\n$`));
      assert.ok(!(await e.d.cli(['task', 'ls', '-q'])).stdout.includes(pod), 'the pod is not in the default namespace');
      const busy = await e.d.cli(['namespace', 'rm', 'k8s.io']);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, /namespace "k8s.io" must be empty, but it still has sandboxes/);
    } finally {
      if (pod) await cri.runtime('RemovePodSandbox', { pod_sandbox_id: pod });
      cri.close();
    }
    assert.equal((await e.d.cli(['-n', 'k8s.io', 'task', 'ls', '-q'])).stdout, '');
  });

  /** A `berth` on PATH that reaches the test daemon, as a user's shell would run it. */
  const shellEnv = () => {
    const cmd = cliCommand([]);
    writeFileSync(path.join(tmp, 'berth'), `#!/bin/sh\nexec ${[cmd.file, ...cmd.args].map((a) => `'${a}'`).join(' ')} "$@"\n`, { mode: 0o755 });
    return { ...process.env, ...cmd.env, PATH: `${tmp}:${process.env.PATH}`, BERTH_HOST: `unix://${e.d.socket}` } as Record<string, string>;
  };

  it('completes commands, flags and container names in bash', async () => {
    const env = shellEnv();
    const script = await runProcess('berth', ['completion', 'bash'], { env });
    assert.equal(script.code, 0, script.stderr);
    writeFileSync(path.join(tmp, 'berth.bash'), script.stdout);
    const complete = async (...words: string[]) => {
      const r = await runProcess('bash', ['-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _berth; printf '%s\\n' "\${COMPREPLY[@]}"`, 'complete', path.join(tmp, 'berth.bash'), 'berth', ...words], { env });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean);
    };
    assert.deepEqual(await complete('rm', 'lowl'), ['lowlevel-web']);
    assert.deepEqual(await complete('container', 'inspect', '--format', '{{.Id}}', 'lowlevel-'), ['lowlevel-web']);
    assert.deepEqual(await complete('ins'), ['inspect']);
    assert.deepEqual(await complete('snap'), ['snapshot']);
    assert.deepEqual(await complete('volume', ''), ['create', 'inspect', 'ls', 'prune', 'rm']);
    assert.deepEqual(await complete('ps', '--al'), ['--all']);
    assert.deepEqual(await complete('network', 'rm', 'ho'), ['host']);
    assert.deepEqual(await complete('-n', 'def'), ['default']);
    // An image name with a tag: bash splits the word at ':' and gets back only what follows it.
    const [repo, tag] = [e.image.slice(0, e.image.lastIndexOf(':')), e.image.slice(e.image.lastIndexOf(':') + 1)];
    const repoWords = repo.split(':').flatMap((p, i) => (i ? [':', p] : [p]));
    assert.deepEqual(await complete('run', ...repoWords, ':', ''), [tag]);
    // Another namespace holds none of these names.
    assert.deepEqual(await complete('-n', 'elsewhere', 'rm', 'lowl'), []);
  });
  it('completes container names in zsh', { skip: !existsSync('/usr/bin/zsh') && 'zsh is not installed' }, async () => {
    const env = shellEnv();
    writeFileSync(path.join(tmp, 'berth.zsh'), (await runProcess('berth', ['completion', 'zsh'], { env })).stdout);
    // compadd exists only inside zsh's completion system: a stand-in prints what the script offers.
    const r = await runProcess('zsh', ['-c', `compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -l -- "$@"; }; source "$1"; words=(berth rm lowl); CURRENT=3; _berth`, 'complete', path.join(tmp, 'berth.zsh')], { env });
    assert.deepEqual([r.code, r.stdout], [0, 'lowlevel-web\n'], r.stderr);
  });

  it('completes container names in fish', { skip: !existsSync('/usr/bin/fish') && 'fish is not installed' }, async () => {
    const env = shellEnv();
    writeFileSync(path.join(tmp, 'berth.fish'), (await runProcess('berth', ['completion', 'fish'], { env })).stdout);
    const r = await runProcess('fish', ['--no-config', '-c', `source $argv[1]; complete -C 'berth rm lowl'; complete -C 'berth network inspect '`, path.join(tmp, 'berth.fish')], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), ['lowlevel-web', 'bridge', 'host', 'none']);
  });
});
