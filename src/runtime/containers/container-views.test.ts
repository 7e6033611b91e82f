import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerRecord } from '../../core/containers.ts';
import type { RuntimeState } from './types.ts';
import { commandLine, duration, inspectView, listItem, statusText } from './container-views.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('duration', () => {
  it('reads as docker units.HumanDuration', () => {
    const cases: Array<[number, string]> = [
      [-5 * S, 'Less than a second'],
      [0, 'Less than a second'],
      [999, 'Less than a second'],
      [1 * S, '1 second'],
      [1999, '1 second'],
      [59 * S + 999, '59 seconds'],
      [60 * S, 'About a minute'],
      [119 * S, 'About a minute'],
      [2 * M, '2 minutes'],
      [59 * M + 59 * S, '59 minutes'],
      [60 * M, 'About an hour'],
      [89 * M, 'About an hour'],
      [90 * M, '2 hours'],
      [47 * H, '47 hours'],
      [48 * H, '2 days'],
      [13 * D + 23 * H, '13 days'],
      [14 * D, '2 weeks'],
      [59 * D, '8 weeks'],
      [60 * D, '2 months'],
      [729 * D, '24 months'],
      [730 * D, '2 years'],
      [3 * 365 * D + 10 * D, '3 years'],
    ];
    for (const [ms, want] of cases) assert.equal(duration(ms), want, `${ms} ms`);
  });
});

describe('statusText', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  const at = (ago: number) => new Date(now - ago).toISOString();
  it('says what docker ps says', () => {
    assert.equal(statusText({ status: 'created', restartCount: 0 }, now), 'Created');
    assert.equal(statusText({ status: 'running', restartCount: 0, startedAt: at(5 * S) }, now), 'Up 5 seconds');
    assert.equal(statusText({ status: 'paused', restartCount: 0, startedAt: at(3 * H) }, now), 'Up 3 hours (Paused)');
    assert.equal(statusText({ status: 'restarting', restartCount: 2, exitCode: 1, finishedAt: at(0) }, now), 'Restarting (1) Less than a second ago');
    assert.equal(statusText({ status: 'exited', restartCount: 0, exitCode: 137, finishedAt: at(2 * M) }, now), 'Exited (137) 2 minutes ago');
    assert.equal(statusText({ status: 'exited', restartCount: 0 }, now), 'Exited (0)');
    assert.equal(statusText({ status: 'removing', restartCount: 0 }, now), 'Removal In Progress');
    assert.equal(statusText({ status: 'dead', restartCount: 0 }, now), 'Dead');
  });
});

const record: ContainerRecord = {
  id: 'a'.repeat(64),
  namespace: 'default',
  name: 'web',
  config: {
    image: 'nginx:latest',
    cmd: ['nginx', '-g', 'daemon off;'],
    mounts: [
      { type: 'volume', source: 'data', target: '/data' },
      { type: 'bind', source: '/srv', target: '/srv', readOnly: true },
    ],
    network: { mode: 'bridge', ports: [{ containerPort: 80, hostPort: 0, protocol: 'tcp' }] },
    restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
    logOpts: { maxSize: 1024, maxFiles: 2 },
  },
  imageId: 'sha256:' + 'b'.repeat(64),
  imageName: 'nginx:latest',
  snapshotter: 'overlayfs',
  snapshotKey: 'a'.repeat(64),
  createdAt: '2024-05-01T10:00:00.000Z',
  labels: { app: 'web' },
  extensions: {},
};

const running: RuntimeState = {
  status: 'running',
  restartCount: 1,
  pid: 4242,
  startedAt: new Date(Date.now() - 10 * M).toISOString(),
  network: {
    mode: 'bridge',
    netnsPath: '/run/netns/x',
    hostname: 'aaaaaaaaaaaa',
    hostsPath: '/h',
    resolvConfPath: '/r',
    hostnamePath: '/n',
    interfaces: [{ network: 'bridge', networkId: 'n1', ifName: 'eth0', ip: '10.88.0.2', prefixLen: 16, gateway: '10.88.0.1', mac: '02:42:0a:58:00:02', aliases: [] }],
    ports: [{ containerPort: 80, hostPort: 32768, protocol: 'tcp' }],
  },
};

describe('commandLine', () => {
  it('combines entrypoint and cmd as docker does', () => {
    const image = { Entrypoint: ['/entry'], Cmd: ['default'] };
    assert.deepEqual(commandLine(record, image), ['/entry', 'nginx', '-g', 'daemon off;']);
    assert.deepEqual(commandLine({ ...record, config: { image: 'x' } }, image), ['/entry', 'default']);
    // A user entrypoint drops the image's cmd.
    assert.deepEqual(commandLine({ ...record, config: { image: 'x', entrypoint: ['/mine'] } }, image), ['/mine']);
    assert.deepEqual(commandLine({ ...record, config: { image: 'x' } }), []);
  });
});

describe('listItem', () => {
  it('has the docker ps shape', () => {
    const item = listItem(record, running, ['nginx', '-g', 'daemon off;']);
    assert.equal(item.Id, record.id);
    assert.deepEqual(item.Names, ['/web']);
    assert.equal(item.Image, 'nginx:latest');
    assert.equal(item.ImageID, record.imageId);
    assert.equal(item.Command, 'nginx -g daemon off;');
    assert.equal(item.Created, Date.parse(record.createdAt) / 1000);
    assert.deepEqual(item.Ports, [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 32768, Type: 'tcp' }]);
    assert.equal(item.State, 'running');
    assert.match(item.Status, /^Up \d+ minutes$/);
    assert.deepEqual(item.Mounts, [
      { Type: 'volume', Name: 'data', Source: 'data', Destination: '/data', RW: true },
      { Type: 'bind', Name: undefined, Source: '/srv', Destination: '/srv', RW: false },
    ]);
    assert.deepEqual(listItem(record, { status: 'created', restartCount: 0 }, []).Ports, []);
  });
});

describe('inspectView', () => {
  const extra = { cmd: ['nginx', '-g', 'daemon off;'], logPath: '/l', bundle: '/b' };
  it('has the docker inspect shape of a running container', () => {
    const v = inspectView(record, running, extra);
    assert.equal(v.Path, 'nginx');
    assert.deepEqual(v.Args, ['-g', 'daemon off;']);
    assert.equal(v.Name, '/web');
    assert.deepEqual(
      { ...v.State, StartedAt: undefined },
      { Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 4242, ExitCode: 0, Error: '', StartedAt: undefined, FinishedAt: '0001-01-01T00:00:00Z' },
    );
    assert.equal(v.RestartCount, 1);
    assert.deepEqual(v.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.deepEqual(v.HostConfig.Binds, ['/srv:/srv:ro']);
    assert.deepEqual(v.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '' }] });
    assert.deepEqual(v.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '1024', 'max-file': '2' } });
    assert.deepEqual(v.NetworkSettings.Ports, { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '32768' }] });
    assert.equal(v.NetworkSettings.IPAddress, '10.88.0.2');
    assert.equal(v.NetworkSettings.SandboxKey, '/run/netns/x');
    assert.deepEqual(Object.keys(v.NetworkSettings.Networks), ['bridge']);
    assert.equal(v.Config.Hostname, 'aaaaaaaaaaaa');
    assert.deepEqual(v.Config.Cmd, ['nginx', '-g', 'daemon off;']);
    assert.equal(v.Config.Entrypoint, null);
    assert.equal(v.LogPath, '/l');
  });

  it('reports stopped, paused and restarting containers as docker does', () => {
    const exited = inspectView(record, { status: 'exited', restartCount: 0, exitCode: 3, pid: 99, finishedAt: '2024-05-01T11:00:00Z' }, extra);
    assert.equal(exited.State.Running, false);
    assert.equal(exited.State.Pid, 0);
    assert.equal(exited.State.ExitCode, 3);
    assert.deepEqual(exited.NetworkSettings.Ports, { '80/tcp': null });
    assert.equal(exited.Config.Hostname, record.id.slice(0, 12));
    const paused = inspectView(record, { ...running, status: 'paused' }, extra);
    assert.equal(paused.State.Running, true);
    assert.equal(paused.State.Paused, true);
    const restarting = inspectView(record, { status: 'restarting', restartCount: 2, exitCode: 1 }, extra);
    assert.equal(restarting.State.Running, true);
    assert.equal(restarting.State.Restarting, true);
    assert.equal(restarting.State.Pid, 0);
  });
});
