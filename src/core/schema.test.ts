import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBody, t } from './schema.ts';

describe('request body schemas', () => {
  const body = t.object(
    {
      Image: t.string(),
      Env: t.strings(),
      Cmd: t.oneOf(t.strings(), t.string()),
      Labels: t.map(t.string()),
      HostConfig: t.object({ Memory: t.int({ min: 0 }), CpuShares: t.int({ min: 0 }), PortBindings: t.map(t.array(t.object({ HostPort: t.string() }))) }),
      Hostname: t.string({ maxLength: 64 }),
      Mode: t.string({ oneOf: ['a', 'b'] }),
    },
    { go: 'container.CreateRequest' },
  );
  const fails = (value: unknown, style: 'docker' | 'plain', message: string) =>
    assert.throws(() => checkBody(body, value, style), (e: Error & { kind?: string }) => e.kind === 'InvalidArgument' && e.message === message);

  it('accepts conforming bodies, absent fields, nulls and fields it does not list', () => {
    checkBody(body, undefined);
    checkBody(body, { Image: 'busybox', Env: ['A=1'], Cmd: 'sh', Labels: { a: 'b' }, HostConfig: { Memory: 1 << 20, PortBindings: { '80/tcp': [{ HostPort: '8080' }] } }, Other: [1, { x: 2 }] });
    checkBody(body, { Image: 'busybox', Env: null, HostConfig: null, Cmd: ['sh', '-c', 'true'] });
  });

  it("names the field and both types, in dockerd's words or berth's", () => {
    fails({ Image: 123 }, 'docker', 'json: cannot unmarshal number into Go struct field CreateRequest.Image of type string');
    fails({ Image: 123 }, 'plain', 'Image: expected a string, got a number');
    fails({ Env: 'A=1' }, 'plain', 'Env: expected a list of strings, got a string');
    fails({ Env: ['A=1', 7] }, 'plain', 'Env[1]: expected a string, got a number');
    fails({ HostConfig: { Memory: 'lots' } }, 'docker', 'json: cannot unmarshal string into Go struct field CreateRequest.HostConfig.Memory of type int64');
    fails({ HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 8080 }] } } }, 'plain', 'HostConfig.PortBindings["80/tcp"][0].HostPort: expected a string, got a number');
    fails({ Labels: { a: 1 } }, 'plain', 'Labels["a"]: expected a string, got a number');
    fails({ Cmd: 5 }, 'plain', 'Cmd: expected a list of strings or a string, got a number');
    fails([1, 2], 'plain', 'the request body: expected an object, got an array');
    fails('text', 'docker', 'json: cannot unmarshal string into Go value of type container.CreateRequest');
  });

  it('checks ranges, lengths and allowed values', () => {
    fails({ HostConfig: { Memory: -5 } }, 'docker', 'invalid HostConfig.Memory: -5 is below the minimum 0');
    fails({ HostConfig: { Memory: 1e300 } }, 'plain', 'HostConfig.Memory: 1e+300 is above the maximum 9007199254740991');
    fails({ HostConfig: { Memory: 1.5 } }, 'plain', 'HostConfig.Memory: expected an integer, got the number 1.5');
    fails({ HostConfig: { CpuShares: -9 } }, 'plain', 'HostConfig.CpuShares: -9 is below the minimum 0');
    fails({ Hostname: 'h'.repeat(5000) }, 'plain', 'Hostname: is longer than 64 characters');
    fails({ Mode: 'c' }, 'plain', 'Mode: "c" is not one of "a", "b"');
  });
});
