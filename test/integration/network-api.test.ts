import assert from 'node:assert/strict';
import type http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registerNetworkRoutes } from '../../src/api/native/routes-networks.ts';
import { createApiServer, Router } from '../../src/api/native/server.ts';
import { rootCtx } from '../../src/core/context.ts';
import { newId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { runCli } from '../helpers/daemon.ts';
import type { TestNet } from '../helpers/network.ts';
import { bridgeOf, openTestNet, randomSubnet } from '../helpers/network.ts';

/**
 * The network routes and the CLI against a network service that has real
 * endpoints (made here with setupContainer, as the container service will):
 * `berth port`, `network connect` and `network disconnect`.
 */
const ctx = rootCtx();
const root = process.getuid?.() === 0;
let t: TestNet;
let server: http.Server;
let host: string;
const shutdown = new AbortController();

before(async () => {
  if (!root) return;
  t = await openTestNet();
  const router = new Router();
  registerNetworkRoutes(router, t.svc);
  server = createApiServer({ router, log: silentLogger, shutdown: shutdown.signal });
  const sock = path.join(t.dir, 'api.sock');
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  host = `unix://${sock}`;
});
after(async () => {
  if (!t) return;
  shutdown.abort();
  server.close();
  server.closeAllConnections();
  await t.close();
});

const cli = (...args: string[]) => runCli(['-H', host, ...args]);

describe('network routes with running endpoints', { skip: !root && 'needs root' }, () => {
  it('port, connect and disconnect through the CLI', async () => {
    for (const name of ['api1', 'api2']) {
      const n = await t.svc.createNetwork(ctx, { name, subnet: randomSubnet() });
      t.bridges.add(bridgeOf(n));
    }
    const id = newId();
    const r = await t.svc.setupContainer(ctx, {
      containerId: id,
      namespace: 'default',
      name: 'web',
      attachment: {
        mode: 'api1',
        ports: [
          { hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' },
          { hostPort: 0, containerPort: 5353, protocol: 'udp' },
        ],
      },
    });
    const [tcp, udp] = r.ports;
    const all = await cli('port', 'web');
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout, `80/tcp -> 127.0.0.1:${tcp.hostPort}\n5353/udp -> 0.0.0.0:${udp.hostPort}\n`);
    assert.equal((await cli('port', id.slice(0, 12), '80')).stdout, `127.0.0.1:${tcp.hostPort}\n`);
    const none = await cli('port', 'web', '81/tcp');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no public port '81\/tcp' published for web/);

    const conn = await cli('network', 'connect', '--alias', 'web2', 'api2', 'web');
    assert.equal(conn.code, 0, conn.stderr);
    const info = JSON.parse((await cli('network', 'inspect', 'api2')).stdout)[0];
    assert.equal(info.Containers[id].Name, 'web');
    const again = await cli('network', 'connect', 'api2', 'web');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists in network api2/);
    const rmBusy = await cli('network', 'rm', 'api2');
    assert.equal(rmBusy.code, 1);
    assert.match(rmBusy.stderr, /has active endpoints \(web\)/);

    assert.equal((await cli('network', 'disconnect', 'api2', 'web')).code, 0);
    const twice = await cli('network', 'disconnect', 'api2', 'web');
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /not connected to network api2/);
    assert.equal((await cli('network', 'disconnect', '-f', 'api2', 'gone')).code, 0);

    await t.svc.teardownContainer(ctx, id);
    const pruned = await cli('network', 'prune', '-f');
    assert.equal(pruned.stdout, 'Deleted Networks:\napi1\napi2\n\n');
  });
});
