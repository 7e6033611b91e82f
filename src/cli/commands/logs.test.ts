import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimeArg } from './logs.ts';

describe('parseTimeArg', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  const nowSec = now / 1000;
  it('reads Go durations as a time ago', () => {
    assert.equal(parseTimeArg('10m', now), nowSec - 600);
    assert.equal(parseTimeArg('1h30m', now), nowSec - 5400);
    assert.equal(parseTimeArg('1.5h', now), nowSec - 5400);
    assert.equal(parseTimeArg('2s', now), nowSec - 2);
    assert.equal(parseTimeArg('1m30.5s', now), nowSec - 91);
    assert.equal(parseTimeArg('1500ms', now), nowSec - 2);
    assert.equal(parseTimeArg('-1h', now), nowSec + 3600);
  });

  it('reads unix seconds', () => {
    assert.equal(parseTimeArg('1714564800', now), 1714564800);
    assert.equal(parseTimeArg('1714564800.5', now), 1714564800.5);
    assert.equal(parseTimeArg('0', now), 0);
  });

  it('reads RFC 3339 dates and date-times', () => {
    assert.equal(parseTimeArg('2013-01-02T13:23:37Z'), Date.parse('2013-01-02T13:23:37Z') / 1000);
    assert.equal(parseTimeArg('2013-01-02T13:23:37.5+02:00'), Date.parse('2013-01-02T11:23:37.5Z') / 1000);
    assert.equal(parseTimeArg('2013-01-02T13:23:37z'), Date.parse('2013-01-02T13:23:37Z') / 1000);
    // Without a zone: local time, like docker.
    assert.equal(parseTimeArg('2013-01-02'), new Date(2013, 0, 2).getTime() / 1000);
    assert.equal(parseTimeArg('2013-01-02T13'), new Date(2013, 0, 2, 13).getTime() / 1000);
    assert.equal(parseTimeArg('2013-01-02T13:23'), new Date(2013, 0, 2, 13, 23).getTime() / 1000);
  });

  it('refuses anything else', () => {
    for (const s of ['', 'foo', '1 2', '10x', '2013-13-45', 'h', '1h 2m', '2013-01-02 13:00']) {
      assert.throws(() => parseTimeArg(s, now), (err: Error & { exit?: number }) => err.exit === 1, s);
    }
  });
});
