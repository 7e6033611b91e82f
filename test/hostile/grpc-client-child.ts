import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * A CRI client in a process of its own, for clients-helpers.ts's
 * killedGrpcClient: argv is socket, service, method, request (JSON) and
 * `unary` or `stream`. A method missing from berth's api.proto is called
 * with an empty message. It prints `started` once the call is made and
 * `answered` when anything comes back, then waits to be killed.
 */
const [socket, service, method, request, kind] = process.argv.slice(2);
const def = protoLoader.loadSync(path.resolve(import.meta.dirname, '../../src/api/cri/api.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const known = (def[`runtime.v1.${service}`] as Record<string, grpc.MethodDefinition<unknown, unknown>> | undefined)?.[method];
const raw = (b: Buffer) => b;
const serialize = known ? known.requestSerialize : () => Buffer.alloc(0);
const deserialize = known ? known.responseDeserialize : raw;
const client = new grpc.Client(`unix:${socket}`, grpc.credentials.createInsecure());
const fullPath = `/runtime.v1.${service}/${method}`;
const answered = () => process.stdout.write('answered\n');
if (kind === 'stream') {
  const call = client.makeServerStreamRequest(fullPath, serialize, deserialize, JSON.parse(request));
  call.on('metadata', answered);
  call.on('data', answered);
  call.on('error', answered);
} else {
  client.makeUnaryRequest(fullPath, serialize, deserialize, JSON.parse(request), answered);
}
process.stdout.write('started\n');
setInterval(() => {}, 1 << 30);
