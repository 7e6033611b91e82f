import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * A CRI client in a process of its own, for clients-helpers.ts's
 * killedGrpcClient: argv is socket, service, method, request (JSON) and
 * `unary` or `stream`. It prints `started` once the call is made and
 * `answered` when anything comes back, then waits to be killed.
 */
const [socket, service, method, request, kind] = process.argv.slice(2);
const def = protoLoader.loadSync(path.resolve(import.meta.dirname, '../../src/api/cri/api.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def) as any;
const client = new pkg.runtime.v1[service](`unix:${socket}`, grpc.credentials.createInsecure());
const answered = () => process.stdout.write('answered\n');
if (kind === 'stream') {
  const call = client[method](JSON.parse(request));
  call.on('metadata', answered);
  call.on('data', answered);
  call.on('error', answered);
} else {
  client[method](JSON.parse(request), answered);
}
process.stdout.write('started\n');
setInterval(() => {}, 1 << 30);
