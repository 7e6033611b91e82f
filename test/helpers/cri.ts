import assert from 'node:assert/strict';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** CRI clients for tests, built from api.proto as kubelet's and crictl's are from upstream's. */
const protoPath = path.resolve(import.meta.dirname, '../../src/api/cri/api.proto');

export type Call = (method: string, req: object) => Promise<any>;

/** A CRI client as kubelet and crictl are: generated from api.proto, over the unix socket. */
export function criClient(socket: string): { runtime: Call; image: Call; raw: (fullMethod: string) => Promise<grpc.ServiceError | undefined>; close(): void } {
  const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const address = `unix:${socket}`;
  const creds = grpc.credentials.createInsecure();
  const runtime = new pkg.runtime.v1.RuntimeService(address, creds);
  const image = new pkg.runtime.v1.ImageService(address, creds);
  const generic = new grpc.Client(address, creds);
  const promisify = (client: any): Call => (method, req) =>
    new Promise((resolve, reject) => client[method](req, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))));
  return {
    runtime: promisify(runtime),
    image: promisify(image),
    raw: (fullMethod) =>
      new Promise((resolve) => {
        const id = (b: Buffer) => b;
        generic.makeUnaryRequest(fullMethod, id, id, Buffer.alloc(0), (err) => resolve(err ?? undefined));
      }),
    close() {
      runtime.close();
      image.close();
      generic.close();
    },
  };
}

export async function rejectsWith(p: Promise<unknown>, code: grpc.status): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    assert.equal((err as grpc.ServiceError).code, code, (err as Error).message);
    return err as grpc.ServiceError;
  }
  assert.fail(`expected gRPC status ${grpc.status[code]}`);
}

