import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kindOf } from '../core/errors.ts';
import { MAX_DEPTH, checkedConfig, checkedIndex, checkedManifest, jsonDepth, parseUntrustedJson, sanitizeConfig, storedDocument } from './untrusted.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const config = (over: Record<string, unknown> = {}) => ({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [d('a')] }, ...over });
const buf = (v: unknown) => Buffer.from(JSON.stringify(v));
const nest = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const deep = (n: number) => `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"x":${nest(n)}}}}`;

test('jsonDepth counts nesting outside strings, stopping past the limit', () => {
  assert.equal(jsonDepth(Buffer.from('1')), 0);
  assert.equal(jsonDepth(Buffer.from('{"a":[1,{"b":[]}]}')), 4);
  assert.equal(jsonDepth(Buffer.from('{"a":"[[[{{{\\"[[["}')), 1);
  assert.equal(jsonDepth(Buffer.from('['.repeat(100000)), 10), 11);
});

test('untrusted JSON past the depth limit is refused, naming the document; a stored one is read with its deep fields dropped', () => {
  assert.equal(kindOf(captured(() => parseUntrustedJson(Buffer.from('{'), 'x'))), 'InvalidArgument');
  const err = captured(() => checkedConfig(Buffer.from(deep(5000)), 'image "evil": config sha256:1'));
  assert.equal(kindOf(err), 'InvalidArgument');
  assert.match(err.message, /^image "evil": config sha256:1: nested more than 64 levels deep$/);
  assert.doesNotThrow(() => checkedConfig(Buffer.from(`{"rootfs":{"diff_ids":[]},"x":${nest(MAX_DEPTH - 1)}}`), 'ok'));
  assert.throws(() => checkedConfig(Buffer.from(`{"rootfs":{"diff_ids":[]},"x":${nest(MAX_DEPTH)}}`), 'deep'), /nested more than/);

  const { value, problems } = storedDocument(sanitizeConfig, Buffer.from(deep(5000)), 'stored');
  assert.deepEqual(problems, ['"config.Labels" must be an object of strings']);
  assert.equal(value.config?.Labels, undefined);
  // What every door does with it: serialise it.
  assert.doesNotThrow(() => JSON.stringify(value));
});

test('a config with fields of the wrong type is refused, naming each field; a good one keeps only the known fields', () => {
  const err = captured(() => checkedConfig(buf(config({ config: { Env: 'A=1', Cmd: [1], Labels: { a: 1 } } })), 'image "x"'));
  assert.equal(kindOf(err), 'InvalidArgument');
  assert.equal(err.message, 'image "x": "config.Env" must be an array of strings; "config.Cmd" must be an array of strings; "config.Labels" must be an object of strings');
  assert.match(captured(() => checkedConfig(buf(config({ rootfs: { diff_ids: ['nope'] } })), 'c')).message, /"rootfs.diff_ids\[0\]" must be a digest/);
  assert.match(captured(() => checkedConfig(buf([]), 'c')).message, /"" must be an object/);
  assert.match(captured(() => checkedConfig(buf(config({ history: [{ empty_layer: 'yes' }] })), 'c')).message, /"history\[0\].empty_layer" must be true or false/);
  assert.match(captured(() => checkedConfig(buf(config({ config: { Healthcheck: { Interval: -1 } } })), 'c')).message, /Healthcheck.Interval/);

  const good = checkedConfig(buf(config({ config: { Env: ['A=1'], Entrypoint: null, ExposedPorts: { '80/tcp': { x: 1 } }, Unknown: { deep: 1 } }, extra: 1 })), 'c');
  assert.deepEqual(good, { architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Entrypoint: null, ExposedPorts: { '80/tcp': {} } }, rootfs: { type: 'layers', diff_ids: [d('a')] } });
});

test('manifests and indexes: descriptors checked, media types from the OCI and Docker lists only', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 3 };
  const manifest = (over: Record<string, unknown> = {}) => buf({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 2 }, layers: [layer], ...over });
  assert.equal(checkedManifest(manifest(), 'm').layers[0].digest, d('b'));
  for (const mt of ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd']) {
    assert.doesNotThrow(() => checkedManifest(manifest({ layers: [{ ...layer, mediaType: mt }] }), 'm'));
  }
  const bad = captured(() => checkedManifest(manifest({ layers: [{ ...layer, mediaType: 'application/x-evil' }] }), 'image "x": manifest sha256:m'));
  assert.equal(bad.message, `image "x": manifest sha256:m: unsupported layer media type "application/x-evil" (layers[0], ${d('b')})`);
  assert.match(captured(() => checkedManifest(manifest({ mediaType: 'text/plain' }), 'm')).message, /unsupported manifest media type "text\/plain"/);
  assert.match(captured(() => checkedManifest(manifest({ layers: 'x' }), 'm')).message, /"layers" must be an array of descriptors/);
  assert.match(captured(() => checkedManifest(manifest({ layers: [{ ...layer, size: -1 }] }), 'm')).message, /"layers\[0\].size" must be a non-negative integer/);
  assert.match(captured(() => checkedManifest(manifest({ config: undefined }), 'm')).message, /"config" must be a descriptor object/);
  assert.match(captured(() => checkedIndex(buf({ manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('a'), size: 1, platform: { os: 1 } }] }), 'i')).message, /"manifests\[0\].platform.os" must be a string/);
  assert.match(captured(() => checkedIndex(buf({ mediaType: 'application/vnd.oci.image.manifest.v1+json', manifests: [] }), 'i')).message, /unsupported index media type/);
});

function captured(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}
