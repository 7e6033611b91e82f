import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerConfigOf, parseBind } from './create-config.ts';
import { compareVersions, splitVersion } from './version.ts';

test('a docker run body becomes a ContainerConfig', () => {
  const c = containerConfigOf(
    {
      Image: 'busybox',
      Cmd: ['sh', '-c', 'echo hi'],
      Entrypoint: null,
      Env: ['A=1'],
      WorkingDir: '/w',
      User: '1000:1000',
      Tty: true,
      OpenStdin: true,
      Labels: { app: 'x' },
      ExposedPorts: { '80/tcp': {} },
      HostConfig: {
        Binds: ['/host:/in:ro', 'data:/data'],
        NetworkMode: 'default',
        PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '53/udp': [{ HostPort: '' }] },
        AutoRemove: true,
        RestartPolicy: { Name: 'no' },
        Memory: 64 << 20,
        NanoCpus: 1_500_000_000,
        CapAdd: ['NET_ADMIN'],
        CapDrop: ['MKNOD'],
        Privileged: false,
        SecurityOpt: ['no-new-privileges:true'],
      },
    },
    'web',
  );
  assert.deepEqual(c, {
    image: 'busybox',
    name: 'web',
    cmd: ['sh', '-c', 'echo hi'],
    env: ['A=1'],
    workingDir: '/w',
    user: '1000:1000',
    tty: true,
    openStdin: true,
    labels: { app: 'x' },
    exposedPorts: ['80/tcp'],
    mounts: [
      { type: 'bind', source: '/host', target: '/in', readOnly: true },
      { type: 'volume', source: 'data', target: '/data' },
    ],
    network: {
      mode: 'bridge',
      ports: [
        { containerPort: 80, hostPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1' },
        { containerPort: 53, hostPort: 0, protocol: 'udp' },
      ],
    },
    autoRemove: true,
    restartPolicy: { name: 'no' },
    resources: { memory: 64 << 20, nanoCpus: 1_500_000_000 },
    capAdd: ['NET_ADMIN'],
    capDrop: ['MKNOD'],
    noNewPrivileges: true,
  });
});

test('the defaults stay unset; --entrypoint "" clears the image entrypoint; host networking', () => {
  assert.deepEqual(containerConfigOf({ Image: 'busybox', HostConfig: { NetworkMode: 'default' } }), { image: 'busybox' });
  assert.deepEqual(containerConfigOf({ Image: 'b', Entrypoint: [''] }).entrypoint, []);
  assert.deepEqual(containerConfigOf({ Image: 'b', HostConfig: { NetworkMode: 'host' } }).network, { mode: 'host' });
  assert.deepEqual(containerConfigOf({ Image: 'b', HostConfig: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } } }).restartPolicy, { name: 'on-failure', maximumRetryCount: 3 });
});

test('devices, the options of Mounts, and every network named at create', () => {
  const c = containerConfigOf({
    Image: 'b',
    HostConfig: {
      NetworkMode: 'front',
      Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/xnull', CgroupPermissions: 'rw' }, { PathOnHost: '/dev/zero' }],
      Mounts: [
        { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1 << 20, Mode: 0o1770 } },
        { Type: 'bind', Source: '/srv', Target: '/srv', BindOptions: { Propagation: 'rslave' } },
        { Type: 'volume', Source: 'data', Target: '/data', VolumeOptions: { NoCopy: true } },
      ],
    },
    NetworkingConfig: { EndpointsConfig: { front: { Aliases: ['web'] }, back: { Aliases: ['api'], IPAMConfig: { IPv4Address: '10.9.0.5' } }, other: null } },
  });
  assert.deepEqual(c.devices, [
    { pathOnHost: '/dev/null', pathInContainer: '/dev/xnull', permissions: 'rw' },
    { pathOnHost: '/dev/zero', pathInContainer: '/dev/zero', permissions: 'rwm' },
  ]);
  assert.deepEqual(c.mounts, [
    { type: 'tmpfs', target: '/scratch', options: ['size=1048576', 'mode=1770'] },
    { type: 'bind', source: '/srv', target: '/srv', options: ['rslave'] },
    { type: 'volume', source: 'data', target: '/data', options: ['nocopy'] },
  ]);
  assert.deepEqual(c.network, {
    mode: 'front',
    aliases: ['web'],
    extraNetworks: [{ network: 'back', aliases: ['api'], ipAddress: '10.9.0.5' }, { network: 'other' }],
  });
});

test('bad create bodies are InvalidArgument', () => {
  const kind = (f: () => unknown) => assert.throws(f, (err: { kind?: string }) => err.kind === 'InvalidArgument');
  kind(() => containerConfigOf({}));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { AutoRemove: true, RestartPolicy: { Name: 'always' } } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { RestartPolicy: { Name: 'sometimes' } } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { NetworkMode: 'host', PortBindings: { '80/tcp': [{ HostPort: '80' }] } } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { PortBindings: { 'x/tcp': null } } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { SecurityOpt: ['apparmor=x'] } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { Devices: [{ PathOnHost: 'null' }] } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { Devices: [{ PathOnHost: '/dev/null', CgroupPermissions: 'x' }] } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { Mounts: [{ Type: 'volume', Target: '/v', TmpfsOptions: { SizeBytes: 1 } }] } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { Mode: -1 } }] } }));
  kind(() => containerConfigOf({ Image: 'b', HostConfig: { NetworkMode: 'none' }, NetworkingConfig: { EndpointsConfig: { net: {} } } }));
  kind(() => parseBind('/only'));
  kind(() => parseBind('/a:relative'));
});

test('API versions: the /v1.NN prefix, its range and docker words', () => {
  assert.deepEqual(splitVersion('/v1.41/containers/json'), { version: '1.41', path: '/containers/json' });
  assert.deepEqual(splitVersion('/_ping'), { version: '1.50', path: '/_ping' });
  assert.equal(compareVersions('1.9', '1.24'), -1);
  assert.throws(() => splitVersion('/v1.23/version'), /client version 1.23 is too old. Minimum supported API version is 1.24/);
  assert.throws(() => splitVersion('/v1.51/version'), /client version 1.51 is too new. Maximum supported API version is 1.50/);
});
