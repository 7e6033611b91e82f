import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (berthd)' : undefined;
const protoPath = path.resolve(import.meta.dirname, '../../src/api/cri/api.proto');

/**
 * Clients that dial cri.sock as grpc-go does when given a bare path (crictl
 * and critest 1.26, kubelet up to about 1.29): the socket path is the
 * `:authority` of every request, which Node's HTTP/2 layer alone resets
 * with PROTOCOL_ERROR. berthd serves them on the same socket, beside
 * clients that send a valid authority.
 */
describe('CRI: clients that send the socket path as :authority', { skip, timeout: 120_000 }, () => {
  let d: TestDaemon;
  let socket: string;
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true })) as any;
  const clients: grpc.Client[] = [];
  const connect = (service: 'RuntimeService' | 'ImageService', authority?: string) => {
    const c = new pkg.runtime.v1[service](`unix:${socket}`, grpc.credentials.createInsecure(), authority ? { 'grpc.default_authority': authority } : {});
    clients.push(c);
    return (method: string, req: object = {}) =>
      new Promise<any>((resolve, reject) => c[method](req, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
  };

  before(async () => {
    d = await startDaemon();
    socket = path.join(d.state, 'cri.sock');
  });
  after(async () => {
    for (const c of clients) c.close();
    await d?.stop();
  });

  it('answers runtime and image calls, one after another on one connection', async () => {
    const runtime = connect('RuntimeService', socket);
    const image = connect('ImageService', socket);
    for (let i = 0; i < 3; i++) {
      const v = await runtime('Version', { version: 'v1' });
      assert.equal(v.runtime_name, 'berth');
      assert.equal(v.runtime_api_version, 'v1');
    }
    const st = await runtime('Status', { verbose: false });
    assert.deepEqual(st.status.conditions.map((c: { type: string }) => c.type), ['RuntimeReady', 'NetworkReady']);
    assert.deepEqual((await runtime('ListPodSandbox', {})).items, []);
    assert.deepEqual((await image('ListImages', {})).images, []);
    assert.equal((await image('ImageFsInfo', {})).image_filesystems.length, 1);
    await assert.rejects(runtime('PodSandboxStatus', { pod_sandbox_id: 'f'.repeat(64) }), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
  });

  it('serves a client with a valid authority beside it, and survives a client that sends garbage', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(socket, () => s.end(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x03\x01\x04\x00\x00\x00\x01\xff\xff\xff', 'latin1')));
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.resume();
    });
    const plain = connect('RuntimeService');
    assert.equal((await plain('Version', {})).runtime_name, 'berth');
    const pathy = connect('RuntimeService', socket);
    assert.equal((await pathy('Version', {})).runtime_name, 'berth');
  });
});
