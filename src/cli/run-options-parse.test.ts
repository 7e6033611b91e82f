import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../core/errors.ts';
import {
  parseAddHost, parseInteger, parseKeyValueFile, parseMount, parseNanoCpus, parseRestart, parseSize, parseUlimit, parseVolume,
} from './run-options-parse.ts';

const throwsMsg = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e) => re.test((e as Error).message));

describe('parseSize', () => {
  it('reads docker RAM sizes in binary units', () => {
    assert.equal(parseSize('100'), 100);
    assert.equal(parseSize('100b'), 100);
    assert.equal(parseSize('4k'), 4096);
    assert.equal(parseSize('64m'), 64 * 1024 * 1024);
    assert.equal(parseSize('64M'), 64 * 1024 * 1024);
    assert.equal(parseSize('1g'), 1024 ** 3);
    assert.equal(parseSize('1.5g'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('2GB'), 2 * 1024 ** 3);
    assert.equal(parseSize('1MiB'), 1024 * 1024);
  });
  it('refuses garbage', () => {
    for (const s of ['x', '', '-1', '10x', 'm', '1.2.3m']) throwsMsg(() => parseSize(s), /invalid size/);
  });
});

describe('numbers', () => {
  it('parses integers and rational CPU counts', () => {
    assert.equal(parseInteger('512'), 512);
    assert.equal(parseInteger('-1'), -1);
    throwsMsg(() => parseInteger('1.5'), /invalid syntax/);
    assert.equal(parseNanoCpus('1.5'), 1.5e9);
    assert.equal(parseNanoCpus('0.25'), 2.5e8);
    assert.equal(parseNanoCpus('2'), 2e9);
    throwsMsg(() => parseNanoCpus('two'), /rational number/);
  });
});

describe('parseUlimit', () => {
  it('reads soft[:hard]', () => {
    assert.deepEqual(parseUlimit('nofile=1024:2048'), { name: 'nofile', soft: 1024, hard: 2048 });
    assert.deepEqual(parseUlimit('nproc=100'), { name: 'nproc', soft: 100, hard: 100 });
  });
  it('refuses unknown types, bad values and soft above hard', () => {
    throwsMsg(() => parseUlimit('bogus=1'), /invalid ulimit type: bogus/);
    throwsMsg(() => parseUlimit('nofile'), /invalid ulimit argument/);
    throwsMsg(() => parseUlimit('nofile=a:b'), /invalid ulimit argument/);
    throwsMsg(() => parseUlimit('nofile=1:2:3'), /too many limit value/);
    throwsMsg(() => parseUlimit('nofile=2048:1024'), /soft limit must be less than or equal to hard limit/);
  });
});

describe('parseRestart', () => {
  it('reads the four policies', () => {
    assert.deepEqual(parseRestart('no'), { name: 'no' });
    assert.deepEqual(parseRestart('always'), { name: 'always' });
    assert.deepEqual(parseRestart('unless-stopped'), { name: 'unless-stopped' });
    assert.deepEqual(parseRestart('on-failure'), { name: 'on-failure' });
    assert.deepEqual(parseRestart('on-failure:3'), { name: 'on-failure', maximumRetryCount: 3 });
  });
  it('refuses bad ones', () => {
    throwsMsg(() => parseRestart('sometimes'), /invalid restart policy 'sometimes'/);
    throwsMsg(() => parseRestart('always:3'), /cannot be used with restart policy 'always'/);
    throwsMsg(() => parseRestart('on-failure:x'), /must be an integer/);
    throwsMsg(() => parseRestart('on-failure:1:2'), /format/);
  });
});

describe('parseKeyValueFile', () => {
  it('skips comments and blanks, keeps values verbatim and resolves bare keys', () => {
    const text = '# comment\n\nA=1\n  B="quoted value"\nC\nD\r\nE=\n';
    const out = parseKeyValueFile(text, 'f', (k) => (k === 'C' ? 'C=fromenv' : undefined));
    assert.deepEqual(out, ['A=1', 'B="quoted value"', 'C=fromenv', 'E=']);
  });
  it('refuses names with whitespace', () => {
    assert.throws(() => parseKeyValueFile('MY VAR=1\n', 'f', () => undefined), (e) => isInvalidArgument(e) && /contains whitespaces/.test((e as Error).message));
  });
});

describe('parseVolume', () => {
  it('reads binds, named and anonymous volumes', () => {
    assert.deepEqual(parseVolume('/host:/ctr', '/cwd'), { type: 'bind', source: '/host', target: '/ctr' });
    assert.deepEqual(parseVolume('/host:/ctr:ro', '/cwd'), { type: 'bind', source: '/host', target: '/ctr', readOnly: true });
    assert.deepEqual(parseVolume('/host:/ctr:rw,z', '/cwd'), { type: 'bind', source: '/host', target: '/ctr', options: ['z'] });
    assert.deepEqual(parseVolume('/host:/ctr:ro,rshared', '/cwd'), { type: 'bind', source: '/host', target: '/ctr', readOnly: true, options: ['rshared'] });
    assert.deepEqual(parseVolume('./data:/ctr', '/home/u'), { type: 'bind', source: '/home/u/data', target: '/ctr' });
    assert.deepEqual(parseVolume('data:/var/lib/x', '/cwd'), { type: 'volume', source: 'data', target: '/var/lib/x' });
    assert.deepEqual(parseVolume('data:/x:ro,nocopy', '/cwd'), { type: 'volume', source: 'data', target: '/x', readOnly: true, options: ['nocopy'] });
    assert.deepEqual(parseVolume('/anon', '/cwd'), { type: 'volume', target: '/anon' });
  });
  it('refuses bad specs with docker messages', () => {
    throwsMsg(() => parseVolume('/a:/b:/c:/d', '/'), /too many colons/);
    throwsMsg(() => parseVolume('/a:rel', '/'), /mount path must be absolute/);
    throwsMsg(() => parseVolume('/a:/b:xx', '/'), /invalid mode: xx/);
    throwsMsg(() => parseVolume('/a:/b:ro,rw', '/'), /invalid mode/);
    throwsMsg(() => parseVolume('/foo:ro', '/'), /invalid volume specification/);
    throwsMsg(() => parseVolume('a$b:/x', '/'), /includes invalid characters for a local volume name/);
    throwsMsg(() => parseVolume('/a:/', '/'), /destination can't be '\/'/);
    throwsMsg(() => parseVolume('vol:/x:rshared', '/'), /invalid mode/);
  });
});

describe('parseMount', () => {
  it('reads bind, volume and tmpfs mounts', () => {
    assert.deepEqual(parseMount('type=bind,source=/a,target=/b,readonly'), { type: 'bind', source: '/a', target: '/b', readOnly: true });
    assert.deepEqual(parseMount('type=bind,src=/a,dst=/b,bind-propagation=rslave,ro=false'), { type: 'bind', source: '/a', target: '/b', options: ['rslave'] });
    assert.deepEqual(parseMount('source=v1,destination=/data,volume-nocopy'), { type: 'volume', source: 'v1', target: '/data', options: ['nocopy'] });
    assert.deepEqual(parseMount('type=volume,target=/anon'), { type: 'volume', target: '/anon' });
    assert.deepEqual(parseMount('type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770'), { type: 'tmpfs', target: '/run', options: ['size=67108864', 'mode=1770'] });
  });
  it('refuses bad mounts', () => {
    throwsMsg(() => parseMount('type=bind,source=/a'), /target is required/);
    throwsMsg(() => parseMount('type=bind,target=/a'), /field Source must not be empty/);
    throwsMsg(() => parseMount('type=bind,source=rel,target=/a'), /must be absolute/);
    throwsMsg(() => parseMount('type=tmpfs,source=x,target=/a'), /must not be specified/);
    throwsMsg(() => parseMount('type=nfs,target=/a'), /invalid mount type/);
    throwsMsg(() => parseMount('type=bind,source=/a,target=/b,bogus=1'), /unexpected key 'bogus'/);
    throwsMsg(() => parseMount('type=bind,source,target=/b'), /must be a key=value pair/);
    throwsMsg(() => parseMount('type=volume,target=/b,tmpfs-size=1m'), /cannot mix 'tmpfs-\*' options/);
    throwsMsg(() => parseMount('type=bind,source=/a,target=/b,bind-propagation=weird'), /invalid propagation/);
    throwsMsg(() => parseMount('type=tmpfs,target=/b,tmpfs-mode=999'), /invalid value/);
  });
});

describe('parseAddHost', () => {
  it('reads host:ip, host=ip and host-gateway', () => {
    assert.equal(parseAddHost('db:10.0.0.2'), 'db:10.0.0.2');
    assert.equal(parseAddHost('db=10.0.0.2'), 'db:10.0.0.2');
    assert.equal(parseAddHost('db=[::1]'), 'db:::1');
    assert.equal(parseAddHost('gw:host-gateway'), 'gw:host-gateway');
  });
  it('refuses bad ones', () => {
    throwsMsg(() => parseAddHost('db'), /bad format for add-host/);
    throwsMsg(() => parseAddHost('db:notanip'), /invalid IP address/);
  });
});
