import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { ErrorKinds } from '../../core/errors.ts';
import { dockerStatusOf } from './errors.ts';

it('docs/architecture.md lists every error kind with the Docker API status the code uses', () => {
  const doc = readFileSync(path.resolve(import.meta.dirname, '../../../docs/architecture.md'), 'utf8');
  const documented = new Map<string, number>();
  for (const m of doc.matchAll(/^\| ([A-Za-z, ]+) \| \d{3} \| (\d{3}) \|/gm)) {
    for (const kind of m[1].split(',').map((k) => k.trim())) documented.set(kind, Number(m[2]));
  }
  for (const kind of ErrorKinds) {
    assert.equal(documented.get(kind), dockerStatusOf(kind), `docs/architecture.md: Docker API status of ${kind}`);
  }
});
