import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dockerRoutes } from '../../src/api/docker/api.ts';
import { Router } from '../../src/api/native/server.ts';
import * as grpc from '@grpc/grpc-js';
import { criClient, rejectsWith } from '../helpers/cri.ts';
import { projectRoot, startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { runtimeSkipReason } from '../helpers/tasks.ts';
import { answering, fdsBackTo, openFds, socketsOf } from './clients-helpers.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (berthd)' : undefined;

/**
 * Malformed and wrongly typed bodies for every route of the native and
 * Docker doors, taken from their routers (a new route is covered the day
 * it is added): each answers with a client error (or 501), never a 500
 * carrying JavaScript's words, and berthd still answers on every door with
 * its descriptors back where they were.
 */

/** Stands for any dependency: registering a route only captures it. */
const anything: any = new Proxy(function () {}, { get: (_t, k) => (k === 'then' ? undefined : anything), apply: () => anything });

/** Every native route: each `register...Route(s)` of every `api/native/routes-*.ts`, so a new file is covered too. */
async function nativeRoutes(): Promise<Array<{ method: string; pattern: string }>> {
  const router = new Router();
  const dir = path.join(projectRoot, 'src/api/native');
  for (const file of readdirSync(dir).filter((f) => /^routes-.*\.ts$/.test(f) && !f.endsWith('.test.ts'))) {
    const mod = (await import(path.join(dir, file))) as Record<string, unknown>;
    for (const [name, fn] of Object.entries(mod)) if (/^register\w*Routes?$/.test(name) && typeof fn === 'function') fn(router, anything, anything);
  }
  const seen = new Set<string>();
  return [...router.routes(), { method: 'POST', pattern: '/cli' }].filter((r) => !seen.has(`${r.method} ${r.pattern}`) && seen.add(`${r.method} ${r.pattern}`));
}

/** Bodies no route should take: not JSON, not an object, and an object whose usual fields all have the wrong type. */
const HOSTILE_BODIES: Array<[string, string]> = [
  ['malformed JSON', '{"Image": "busybox", '],
  ['a list', '[1, 2, 3]'],
  ['a string', '"busybox"'],
  ['a number', '1e300'],
  ['deeply nested', `{"Image": ${'['.repeat(50_000)}${']'.repeat(50_000)}}`],
  [
    'wrongly typed fields',
    JSON.stringify({
      Image: 123,
      image: 123,
      Cmd: 5,
      cmd: { a: 1 },
      Env: 'A=1',
      env: 'A=1',
      Labels: ['a'],
      labels: 'x',
      Hostname: 'h'.repeat(5000),
      hostname: 'h'.repeat(5000),
      HostConfig: { Memory: 'lots', CpuShares: -9, PortBindings: { '80/tcp': [{ HostPort: 80 }] }, Mounts: [{ Target: 1 }], Binds: 'a:b' },
      NetworkingConfig: { EndpointsConfig: { x: { Aliases: 'a' } } },
      resources: { memory: -5, cpuShares: -9 },
      network: { ports: [{ containerPort: 70000 }] },
      mounts: 'x',
      Name: 5,
      name: 5,
      Driver: [],
      Container: 7,
      source: 1,
      target: 1,
      serveraddress: 1,
      argv: 'ls',
      Detach: 'yes',
      DetachKeys: 5,
      IPAM: { Config: 'x' },
    }),
  ],
];

/** Query parameters of the wrong kind, one at a time (a bad one refused first must not hide the next). */
const HOSTILE_QUERIES = Object.entries({ t: 'abc', h: '-1', w: '1e300', filters: '{bad', limit: 'abc', signal: 'NOPE', since: 'abc', until: 'abc', tail: 'abc', condition: 'x', detachKeys: 'ctrl-ü', name: '../..', fromImage: ':::', tag: '@@', all: 'maybe', size: '2', force: 'x', stream: 'x', path: '' }).map(
  ([k, v]) => `?${new URLSearchParams({ [k]: v })}`,
);

/** JavaScript's own words in an answer mean a type error got through to the code. */
const JS_ERROR = /is not a function|Cannot read propert|is not iterable|undefined is not|Cannot convert|Maximum call stack|\bof undefined\b|\bof null\b/;

function send(socket: string, method: string, p: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: p, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
      // A stream that follows (events, logs) answers its status and goes on: what came so far is the answer.
      if (res.statusCode === 200) setTimeout(() => {
        resolve({ status: res.statusCode ?? 0, body: text });
        req.destroy();
      }, 500).unref();
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A path for a pattern: every parameter names something that does not exist. */
const pathOf = (pattern: string) => pattern.replace(/:[a-z]+/gi, 'hostile-none').replace(/\*[a-z]+/gi, 'hostile/none');

describe('hostile bodies: every route of the native and Docker doors', { skip, timeout: 600_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    await d?.stop();
  });

  const doors: Array<['native' | 'docker', () => Promise<Array<{ method: string; pattern: string }>>]> = [
    ['native', nativeRoutes],
    ['docker', async () => dockerRoutes(anything).routes()],
  ];
  for (const [door, routes] of doors) {
    it(`${door}: every route refuses malformed and wrongly typed bodies and query parameters with a client error`, async () => {
      const socket = door === 'native' ? d.socket : socketsOf(d).docker;
      const list = await routes();
      assert.ok(list.length > 20, `only ${list.length} routes found`);
      const failures: string[] = [];
      for (const { method, pattern } of list) {
        const withBody = method !== 'HEAD' && method !== 'GET';
        await answering(d);
        const baseline = openFds(d.proc.pid!);
        const cases = [...(withBody ? HOSTILE_BODIES.map(([w, b]) => [w, b, ''] as const) : []), ...HOSTILE_QUERIES.map((q) => [`the query ${q}`, withBody ? '{}' : '', q] as const)];
        for (const [what, body, query] of cases) {
          const r = await send(socket, method, pathOf(pattern) + query, body);
          const line = `${method} ${pattern} with ${what}: ${r.status} ${r.body.slice(0, 300)}`;
          if ((r.status >= 500 && r.status !== 501) || JS_ERROR.test(r.body)) failures.push(line);
        }
        await answering(d);
        await fdsBackTo(d.proc.pid!, baseline, `${method} ${pattern}`);
      }
      assert.deepEqual(failures, []);
    });
  }

  it('docker: the create body in detail, answered in dockerd\'s words', async () => {
    const docker = socketsOf(d).docker;
    const cases: Array<[object, RegExp]> = [
      [{ Image: 123 }, /^json: cannot unmarshal number into Go struct field CreateRequest\.Image of type string$/],
      [{ Image: 'busybox', HostConfig: { Memory: 'lots' } }, /cannot unmarshal string into Go struct field CreateRequest\.HostConfig\.Memory of type int64/],
      [{ Image: 'busybox', HostConfig: { Memory: -5 } }, /HostConfig\.Memory: -5 is below the minimum 0/],
      [{ Image: 'busybox', HostConfig: { Memory: 1e300 } }, /HostConfig\.Memory: 1e\+300 is above the maximum/],
      [{ Image: 'busybox', HostConfig: { CpuShares: -9 } }, /HostConfig\.CpuShares: -9 is below the minimum 0/],
      [{ Image: 'busybox', Hostname: 'h'.repeat(5000) }, /Hostname: is longer than 64 characters/],
      [{ Image: 'busybox', Env: 'A=1' }, /cannot unmarshal string into Go struct field CreateRequest\.Env of type \[\]string/],
      [{ Image: 'busybox', HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 8080 }] } } }, /HostConfig\.PortBindings\["80\/tcp"\]\[0\]\.HostPort of type string/],
      [{ Image: 'busybox', HostConfig: { Mounts: [{ Type: 'bind', Source: '/tmp', Target: 5 }] } }, /HostConfig\.Mounts\[0\]\.Target of type string/],
      [{ Image: 'busybox', NetworkingConfig: { EndpointsConfig: { bridge: { Aliases: 'a' } } } }, /NetworkingConfig\.EndpointsConfig\["bridge"\]\.Aliases of type \[\]string/],
    ];
    for (const [body, message] of cases) {
      const r = await send(docker, 'POST', '/containers/create', JSON.stringify(body));
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 100)}: ${r.body}`);
      assert.match(JSON.parse(r.body).message, message);
    }
    // Nothing was made by any of them.
    const list = await send(docker, 'GET', '/containers/json?all=1', '');
    assert.deepEqual(JSON.parse(list.body), []);
  });

  it('native: a ContainerConfig of the wrong shape is refused naming the field', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ image: 123 }, /^image: expected a string, got a number$/],
      [{ image: 'busybox', resources: { memory: 'lots' } }, /resources\.memory: expected an integer, got a string/],
      [{ image: 'busybox', resources: { cpuShares: -9 } }, /resources\.cpuShares: -9 is below the minimum 0/],
      [{ image: 'busybox', hostname: 'h'.repeat(5000) }, /hostname: is longer than 64 characters/],
      [{ image: 'busybox', env: 'A=1' }, /env: expected a list of strings, got a string/],
      [{ image: 'busybox', network: { mode: 'bridge', ports: [{ hostPort: 80, containerPort: 70000, protocol: 'tcp' }] } }, /network\.ports\[0\]\.containerPort: 70000 is above the maximum 65535/],
    ];
    for (const p of ['/containers/create', '/containers/run']) {
      for (const [body, message] of cases) {
        const r = await send(d.socket, 'POST', p, JSON.stringify(body));
        assert.equal(r.status, 400, `${p} ${JSON.stringify(body).slice(0, 100)}: ${r.body}`);
        assert.equal(JSON.parse(r.body).kind, 'InvalidArgument');
        assert.match(JSON.parse(r.body).message, message);
      }
    }
  });
  it('cri: requests out of range answer INVALID_ARGUMENT naming the field, and make nothing', async () => {
    const cri = criClient(socketsOf(d).cri);
    try {
      const pod = (extra: object) => ({ config: { metadata: { name: 'hostile', uid: 'u1', namespace: 'default', attempt: 0 }, ...extra } });
      let err = await rejectsWith(cri.runtime('RunPodSandbox', pod({ hostname: 'h'.repeat(5000) })), grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /config\.hostname: is longer than 64 characters/);
      err = await rejectsWith(cri.runtime('RunPodSandbox', { config: { metadata: { name: '', uid: 'u2', namespace: 'default' } } }), grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /config\.metadata\.name: must not be empty/);
      err = await rejectsWith(cri.image('PullImage', { image: { image: 'x'.repeat(5000) } }), grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /image\.image: is longer than 4096 characters/);
      assert.deepEqual((await cri.runtime('ListPodSandbox', {})).items, []);
    } finally {
      cri.close();
    }
    await answering(d);
  });
});

describe('hostile query parameters on a running container', { skip: runtimeSkipReason(), timeout: 300_000 }, () => {
  let e: Engine;
  let id: string;
  before(async () => {
    e = await startEngine();
    const made = await send(socketsOf(e.d).docker, 'POST', '/containers/create', JSON.stringify({ Image: e.image, Cmd: ['sleep', '100000'], Tty: true }));
    id = JSON.parse(made.body).Id;
    assert.equal((await send(socketsOf(e.d).docker, 'POST', `/containers/${id}/start`, '')).status, 204);
  });
  after(async () => {
    await e?.stop();
  });

  it('a stop timeout or a terminal size that is not a number in range is refused, and the container runs on', async () => {
    for (const socket of [e.d.socket, socketsOf(e.d).docker]) {
      for (const [p, message] of [
        [`/containers/${id}/stop?t=abc`, /invalid value for t: "abc": must be an integer from -1 to 2147483647/],
        [`/containers/${id}/restart?t=1e9999`, /invalid value for t: "1e9999"/],
        [`/containers/${id}/resize?h=abc&w=80`, /invalid resize height: "abc": must be an integer from 0 to 65535/],
        [`/containers/${id}/resize?h=24&w=70000`, /invalid resize width: "70000"/],
        [`/containers/${id}/resize`, /resize needs a height \(h\) and a width \(w\)/],
      ] as const) {
        const r = await send(socket, 'POST', p, '');
        assert.equal(r.status, 400, `${p}: ${r.status} ${r.body}`);
        assert.match(JSON.parse(r.body).message, message);
      }
    }
    const inspect = JSON.parse((await send(socketsOf(e.d).docker, 'GET', `/containers/${id}/json`, '')).body);
    assert.equal(inspect.State.Status, 'running');
    assert.equal(inspect.RestartCount, 0);
    await answering(e.d);
  });
});
