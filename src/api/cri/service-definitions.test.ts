import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as protoLoader from '@grpc/proto-loader';
import type Protobuf from 'protobufjs';
import { CRI_PROTO_PATH, PROTO_LOADER_OPTIONS } from './server.ts';
import { criServiceDefinitions } from './service-definitions.ts';

// What the build writes: api.proto as protobufjs JSON.
async function writeProtoJson(file: string): Promise<void> {
  const protobuf = createRequire(import.meta.url)('protobufjs') as typeof Protobuf;
  await writeFile(file, JSON.stringify(new protobuf.Root().loadSync(CRI_PROTO_PATH, { keepCase: true }).toJSON()));
}

const createRequest = {
  pod_sandbox_id: 'p1',
  config: {
    metadata: { name: 'c', attempt: 2 },
    image: { image: 'busybox' },
    command: ['sh', '-c', 'true'],
    labels: { a: 'b' },
    linux: { resources: { cpu_quota: '50000', memory_limit_in_bytes: '67108864', unified: { 'memory.high': '1' } } },
  },
};
const statusResponse = { status: { id: 'c1', state: 'CONTAINER_EXITED', created_at: '1733550000000000000', exit_code: 3, labels: { x: 'y' } }, info: {} };

describe('CRI service definitions', () => {
  let dir: string;
  const reference = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-cri-defs-'));
    await writeProtoJson(path.join(dir, 'api.json'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const source of ['the built JSON', 'the parsed .proto'] as const) {
    it(`from ${source}, encode and decode as @grpc/proto-loader's do`, () => {
      const json = source === 'the built JSON' ? path.join(dir, 'api.json') : path.join(dir, 'absent.json');
      const defs = criServiceDefinitions(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS, json);
      for (const service of ['runtime.v1.RuntimeService', 'runtime.v1.ImageService']) {
        const ref = reference[service] as Record<string, protoLoader.MethodDefinition<object, object>>;
        assert.deepEqual(Object.keys(defs[service]).sort(), Object.keys(ref).sort());
        for (const [name, m] of Object.entries(defs[service])) {
          assert.equal(m.path, ref[name].path);
          assert.equal(m.requestStream, ref[name].requestStream);
          assert.equal(m.responseStream, ref[name].responseStream);
          assert.equal(m.originalName, ref[name].originalName);
        }
      }
      const create = defs['runtime.v1.RuntimeService'].CreateContainer;
      const refCreate = (reference['runtime.v1.RuntimeService'] as Record<string, protoLoader.MethodDefinition<object, object>>).CreateContainer;
      const wire = create.requestSerialize(createRequest);
      assert.deepEqual(wire, refCreate.requestSerialize(createRequest));
      assert.deepEqual(create.requestDeserialize(wire), refCreate.requestDeserialize(wire));
      const status = defs['runtime.v1.RuntimeService'].ContainerStatus;
      const refStatus = (reference['runtime.v1.RuntimeService'] as Record<string, protoLoader.MethodDefinition<object, object>>).ContainerStatus;
      const out = status.responseSerialize(statusResponse);
      assert.deepEqual(out, refStatus.responseSerialize(statusResponse));
      assert.deepEqual(status.responseDeserialize(out), refStatus.responseDeserialize(out));
    });
  }
});
