import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../core/errors.ts';
import { applyChanges } from './changes.ts';
import type { ImageConfig } from './types.ts';

const base = (): ImageConfig => ({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });

describe('applyChanges', () => {
  it('takes exec and shell forms, env and labels in both syntaxes', () => {
    const c = base();
    applyChanges(c, ['CMD ["sh", "-c", "echo"]', 'ENTRYPOINT /init --x', 'ENV A=1 B="two words"', 'ENV C 3', 'ENV A=9', 'LABEL k=v', 'EXPOSE 80 53/udp', 'WORKDIR /srv', 'USER 1000:1000', 'VOLUME ["/data"]', 'STOPSIGNAL SIGINT']);
    assert.deepEqual(c.config?.Cmd, ['sh', '-c', 'echo']);
    assert.deepEqual(c.config?.Entrypoint, ['/bin/sh', '-c', '/init --x']);
    assert.deepEqual(c.config?.Env, ['B=two words', 'C=3', 'A=9']);
    assert.deepEqual(c.config?.Labels, { k: 'v' });
    assert.deepEqual(Object.keys(c.config?.ExposedPorts ?? {}), ['80/tcp', '53/udp']);
    assert.equal(c.config?.WorkingDir, '/srv');
    assert.equal(c.config?.User, '1000:1000');
    assert.deepEqual(Object.keys(c.config?.Volumes ?? {}), ['/data']);
    assert.equal(c.config?.StopSignal, 'SIGINT');
  });
  it('refuses unknown instructions and malformed ones, naming them', () => {
    assert.throws(() => applyChanges(base(), ['RUN echo']), (e) => isInvalidArgument(e) && /RUN/.test((e as Error).message));
    assert.throws(() => applyChanges(base(), ['CMD']), (e) => isInvalidArgument(e));
    assert.throws(() => applyChanges(base(), ['ENV lonely']), (e) => isInvalidArgument(e));
  });
});
