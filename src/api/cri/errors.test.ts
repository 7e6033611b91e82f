import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { berthError, ErrorKinds, wrap } from '../../core/errors.ts';
import { grpcCodeOf, toGrpcError } from './errors.ts';

it('docs/architecture.md lists every error kind with the gRPC code the CRI answers', () => {
  const doc = readFileSync(path.resolve(import.meta.dirname, '../../../docs/architecture.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## The CRI front door'));
  const table = section.slice(0, section.indexOf('\n## ', 1));
  const documented = new Map<string, string>();
  for (const m of table.matchAll(/^\| ([A-Za-z, ]+) \| ([A-Z_]+) \|$/gm)) {
    for (const kind of m[1].split(',').map((k) => k.trim())) documented.set(kind, m[2]);
  }
  for (const kind of ErrorKinds) {
    assert.equal(documented.get(kind), status[grpcCodeOf(kind)], `docs/architecture.md, "The CRI front door": code of ${kind}`);
  }
});

it('a wrapped error keeps its kind and its message names the problem', () => {
  const err = toGrpcError(wrap(berthError('NotFound', 'host/app:1: not found'), 'pull image "host/app:1"'));
  assert.equal(err.code, status.NOT_FOUND);
  assert.equal(err.details, 'pull image "host/app:1": host/app:1: not found');
  assert.equal(toGrpcError(new Error('boom')).code, status.UNKNOWN);
  assert.equal(toGrpcError(berthError('Conflict', 'in use')).code, status.FAILED_PRECONDITION);
});
