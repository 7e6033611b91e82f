import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerSummary } from '../../runtime/containers/containers.ts';
import { criContainerState, isoToNs, toCriContainerStatus } from './container-view.ts';

const summary = (state: object, config: object = {}): ContainerSummary =>
  ({
    record: { id: 'c1', name: 'k8s_c', imageId: 'sha256:i', imageName: 'busybox', createdAt: '2026-01-01T00:00:00.000Z', config: { image: 'busybox', pod: { sandboxId: 's', name: 'c', attempt: 2 }, ...config } },
    state: { restartCount: 0, ...state },
  }) as unknown as ContainerSummary;
const status = (state: object, config?: object) => toCriContainerStatus(summary(state, config), { spec: 'busybox:1', ref: 'sha256:i' }, '/log');

describe('CRI container views', () => {
  it('maps berth states to CRI states', () => {
    const of = (status: string, more: object = {}) => criContainerState(summary({ status, ...more }));
    assert.deepEqual(
      ['created', 'running', 'paused', 'restarting', 'exited', 'dead', 'removing'].map((s) => of(s)),
      ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_RUNNING', 'CONTAINER_RUNNING', 'CONTAINER_EXITED', 'CONTAINER_EXITED', 'CONTAINER_EXITED'],
    );
    assert.equal(of('created', { error: 'exec: not found' }), 'CONTAINER_EXITED', 'a failed start');
  });

  it("gives containerd's reasons and times", () => {
    const done = status({ status: 'exited', exitCode: 0, startedAt: '2026-01-01T00:00:01.000Z', finishedAt: '2026-01-01T00:00:02.000Z' });
    assert.deepEqual([done.reason, done.exit_code, done.started_at, done.finished_at], ['Completed', 0, isoToNs('2026-01-01T00:00:01.000Z'), isoToNs('2026-01-01T00:00:02.000Z')]);
    assert.equal(status({ status: 'exited', exitCode: 2 }).reason, 'Error');
    assert.equal(status({ status: 'exited', exitCode: 137, oomKilled: true }).reason, 'OOMKilled');
    const failed = status({ status: 'created', error: 'exec: "x": not found', exitCode: 127 });
    assert.deepEqual([failed.state, failed.reason, failed.message, failed.exit_code], ['CONTAINER_EXITED', 'StartError', 'exec: "x": not found', 127]);
    assert.equal(failed.finished_at, isoToNs('2026-01-01T00:00:00.000Z'));
    const running = status({ status: 'running', startedAt: '2026-01-01T00:00:01.000Z' });
    assert.deepEqual([running.reason, running.finished_at, running.exit_code], ['', '0', 0]);
    assert.equal(status({ status: 'created' }).started_at, '0');
  });

  it('reports metadata, image, log path only with a CRI log, and the stop signal when the enum has it', () => {
    const st = status({ status: 'created' }, { logPath: '/var/log/pods/x/c/0.log', stopSignal: 'SIGQUIT' });
    assert.deepEqual([st.metadata, st.image.image, st.image_ref, st.image_id, st.log_path, st.stop_signal], [{ name: 'c', attempt: 2 }, 'busybox:1', 'sha256:i', 'sha256:i', '/log', 'SIGQUIT']);
    assert.equal(status({ status: 'created' }).log_path, '');
    assert.equal(status({ status: 'created' }, { stopSignal: '37' }).stop_signal, 'RUNTIME_DEFAULT');
  });
});
