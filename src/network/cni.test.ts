import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../core/context.ts';
import { kindOf } from '../core/errors.ts';
import type { CniConfigList } from './cni.ts';
import { Cni, parseConfigList } from './cni.ts';

/**
 * The CNI client against small shell plugins that record what they were
 * given; the reference plugins are exercised in test/integration/network.test.ts.
 */
let dir: string;
const ctx = rootCtx();

// Records env and stdin, then answers like a 1.0 plugin that adds one IP
// (or echoes prevResult when chained).
const recorder = (tag: string, versions = '"0.4.0","1.0.0"') => `#!/bin/sh
in=$(cat)
printf '%s %s %s %s %s\\n' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_NETNS" "$CNI_ARGS" >> "$(dirname "$0")/calls.log"
printf '%s\\n' "$in" > "$(dirname "$0")/${tag}-$CNI_COMMAND.json"
case "$CNI_COMMAND" in
  VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":[${versions}]}' ;;
  ADD) printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[{"address":"10.9.0.${tag === 'a' ? 5 : 6}/24","interface":0}]}' "$CNI_NETNS" ;;
esac
exit 0
`;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'berth-cni-'));
  const plugins: Record<string, string> = {
    a: recorder('a'),
    b: recorder('b'),
    new11: recorder('new11', '"1.0.0","1.1.0"'),
    fail: `#!/bin/sh\ncat >/dev/null\nprintf '{"cniVersion":"1.0.0","code":7,"msg":"bad bridge name","details":"name too long"}'\nexit 1\n`,
    garbage: `#!/bin/sh\ncat >/dev/null\necho 'panic: something broke' >&2\nexit 2\n`,
    slow: `#!/bin/sh\ncat >/dev/null\nexec sleep 30\n`,
  };
  for (const [name, text] of Object.entries(plugins)) {
    await writeFile(path.join(dir, name), text);
    await chmod(path.join(dir, name), 0o755);
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const list = (...types: string[]): CniConfigList => ({ cniVersion: '1.0.0', name: 'testnet', plugins: types.map((type) => ({ type, capabilities: { portMappings: true }, custom: type })) });

describe('Cni', () => {
  it('chains ADD with prevResult, caches it, and DELs in reverse from the cache', async () => {
    const cni = new Cni({ pluginDirs: ['/nonexistent', dir], cacheDir: path.join(dir, 'cache') });
    const rt = { containerId: 'c1', netns: '/x/ns', ifName: 'eth0', args: [['K8S_POD_NAME', 'p'] as [string, string]], capabilityArgs: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }], other: 1 } };
    const res = await cni.add(ctx, list('a', 'b'), rt);
    assert.equal(res.ips?.[0].address, '10.9.0.6/24');
    const aIn = JSON.parse(await readFile(path.join(dir, 'a-ADD.json'), 'utf8'));
    const bIn = JSON.parse(await readFile(path.join(dir, 'b-ADD.json'), 'utf8'));
    assert.equal(aIn.name, 'testnet');
    assert.equal(aIn.prevResult, undefined);
    assert.deepEqual(aIn.runtimeConfig, { portMappings: rt.capabilityArgs.portMappings });
    assert.equal(bIn.prevResult.ips[0].address, '10.9.0.5/24');
    const cached = await cni.readCache('testnet', 'c1', 'eth0');
    assert.equal(cached?.result.ips?.[0].address, '10.9.0.6/24');
    assert.deepEqual(cached?.config, list('a', 'b'));

    // A fresh client (a restarted daemon) deletes from the cache alone, and drops a write a crash cut short.
    await writeFile(path.join(dir, 'calls.log'), '');
    const torn = path.join(dir, 'cache', 'results', 'testnet-c9-eth0.tmp');
    await writeFile(torn, '{"kind":"cniCa');
    const again = new Cni({ pluginDirs: [dir], cacheDir: path.join(dir, 'cache') });
    assert.equal((await again.listCache()).length, 1);
    await assert.rejects(readFile(torn), { code: 'ENOENT' });
    assert.equal(await again.delCached(ctx, 'testnet', 'c1', 'eth0'), true);
    const calls = (await readFile(path.join(dir, 'calls.log'), 'utf8')).trim().split('\n');
    assert.deepEqual(
      calls.map((c) => c.split(' ').slice(0, 5).join(' ')),
      ['DEL c1 eth0 /x/ns K8S_POD_NAME=p', 'DEL c1 eth0 /x/ns K8S_POD_NAME=p'],
    );
    const bDel = JSON.parse(await readFile(path.join(dir, 'b-DEL.json'), 'utf8'));
    assert.equal(bDel.prevResult.ips[0].address, '10.9.0.6/24');
    assert.deepEqual(bDel.runtimeConfig, { portMappings: rt.capabilityArgs.portMappings });
    assert.equal(await again.readCache('testnet', 'c1', 'eth0'), undefined);
    assert.equal(await again.delCached(ctx, 'testnet', 'c1', 'eth0'), false);
  });

  it('surfaces a plugin error with its message and rolls back the chain', async () => {
    const cni = new Cni({ pluginDirs: [dir], cacheDir: path.join(dir, 'cache') });
    await writeFile(path.join(dir, 'calls.log'), '');
    await assert.rejects(cni.add(ctx, list('a', 'fail'), { containerId: 'c2', netns: '/x', ifName: 'eth0' }), (e) => {
      assert.equal(kindOf(e), 'InvalidArgument');
      assert.match((e as Error).message, /CNI network "testnet": plugin fail ADD: bad bridge name; name too long/);
      return true;
    });
    const calls = await readFile(path.join(dir, 'calls.log'), 'utf8');
    assert.match(calls, /^ADD c2/m);
    assert.match(calls, /^DEL c2/m);
    assert.equal(await cni.readCache('testnet', 'c2', 'eth0'), undefined);
    await assert.rejects(cni.add(ctx, list('garbage'), { containerId: 'c3', netns: '/x', ifName: 'eth0' }), /panic: something broke/);
  });

  it('names a missing plugin and a broken config', async () => {
    const cni = new Cni({ pluginDirs: [dir], cacheDir: path.join(dir, 'cache') });
    await assert.rejects(cni.add(ctx, list('nosuch'), { containerId: 'c4', netns: '/x', ifName: 'eth0' }), (e) => kindOf(e) === 'FailedPrecondition' && /"nosuch" not found/.test((e as Error).message));
    assert.throws(() => parseConfigList('{"cniVersion":', 'x.conflist'), (e) => kindOf(e) === 'InvalidArgument' && /x\.conflist: invalid JSON/.test((e as Error).message));
    assert.throws(() => parseConfigList('{"cniVersion":"1.0.0","name":"n","plugins":[]}'), (e) => kindOf(e) === 'InvalidArgument');
    assert.throws(() => parseConfigList('{"cniVersion":"1.0.0","name":"n","plugins":[{}]}'), /needs a "type"/);
    assert.equal(parseConfigList('{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}').name, 'n');
  });

  it('kills a plugin that runs past its timeout', async () => {
    const cni = new Cni({ pluginDirs: [dir], cacheDir: path.join(dir, 'cache'), timeoutMs: 300 });
    await assert.rejects(cni.add(ctx, list('slow'), { containerId: 'c5', netns: '/x', ifName: 'eth0' }), (e) => kindOf(e) === 'DeadlineExceeded');
    const ac = new AbortController();
    const p = new Cni({ pluginDirs: [dir], cacheDir: path.join(dir, 'cache') }).version({ ...ctx, signal: ac.signal }, 'slow');
    ac.abort();
    await assert.rejects(p, (e) => kindOf(e) === 'Canceled');
  });

  it('asks VERSION, and sends STATUS and GC only to 1.1 plugins', async () => {
    const cni = new Cni({ pluginDirs: [dir], cacheDir: path.join(dir, 'cache') });
    assert.deepEqual((await cni.version(ctx, 'a')).supportedVersions, ['0.4.0', '1.0.0']);
    await writeFile(path.join(dir, 'calls.log'), '');
    await cni.status(ctx, list('a', 'new11'));
    await cni.add(ctx, list('new11'), { containerId: 'keep', netns: '/x', ifName: 'eth0' });
    await cni.add(ctx, list('new11'), { containerId: 'gone', netns: '/x', ifName: 'eth0' });
    await cni.gc(ctx, list('new11'), [{ containerId: 'keep', ifName: 'eth0' }]);
    const calls = (await readFile(path.join(dir, 'calls.log'), 'utf8')).trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' ').trim());
    assert.deepEqual(calls, ['VERSION', 'STATUS', 'ADD keep', 'ADD gone', 'DEL gone', 'GC']);
    const gc = JSON.parse(await readFile(path.join(dir, 'new11-GC.json'), 'utf8'));
    assert.equal(gc.cniVersion, '1.1.0');
    assert.deepEqual(gc['cni.dev/valid-attachments'], [{ containerID: 'keep', ifname: 'eth0' }]);
    assert.ok(await cni.readCache('testnet', 'keep', 'eth0'));
    assert.equal(await cni.readCache('testnet', 'gone', 'eth0'), undefined);
  });
});
