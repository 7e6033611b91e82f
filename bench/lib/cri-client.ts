import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { sleep } from './proc.ts';

/**
 * The bench's own CRI client: grpc-js over the project's api.proto, the
 * same code and the same requests for berth and for containerd's CRI
 * plugin, so the client's cost is the same on both sides.
 */
export type CriCall = (method: string, req: object) => Promise<any>;

let pkg: any;
function runtimePackage(): any {
  if (!pkg) {
    const def = protoLoader.loadSync(path.resolve(import.meta.dirname, '../../src/api/cri/api.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    pkg = grpc.loadPackageDefinition(def);
  }
  return pkg;
}

export interface CriClient {
  runtime: CriCall;
  image: CriCall;
  close(): void;
}

/** `deadlineMs` bounds every call (a hung daemon must not hold a cleanup for long). */
export function criClient(socket: string, deadlineMs = 120_000): CriClient {
  const p = runtimePackage();
  const address = `unix:${socket}`;
  const creds = grpc.credentials.createInsecure();
  // A list of many containers' stats must never hit grpc-js's 4 MiB receive cap.
  const options = { 'grpc.max_receive_message_length': 64 << 20 };
  const runtime = new p.runtime.v1.RuntimeService(address, creds, options);
  const image = new p.runtime.v1.ImageService(address, creds, options);
  const call = (client: any): CriCall => (method, req) =>
    new Promise((resolve, reject) =>
      client[method](req, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(new Error(`${method}: ${err.message}`)) : resolve(res))),
    );
  return {
    runtime: call(runtime),
    image: call(image),
    close() {
      runtime.close();
      image.close();
    },
  };
}

/**
 * One unary call with an empty request on a fresh channel (a gRPC service's
 * Version answers an empty request): true when it answers OK. A channel of
 * its own per attempt, because a channel that met a missing socket backs
 * off for a second before it tries again, which a readiness probe must not
 * wait for.
 */
export async function grpcAnswers(socket: string, fullMethod: string, timeoutMs = 5000): Promise<boolean> {
  if (!existsSync(socket) || !(await connects(socket))) return false;
  const client = new grpc.Client(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<boolean>((resolve) => {
      const id = (b: Buffer) => b;
      client.makeUnaryRequest(fullMethod, id, id, Buffer.alloc(0), { deadline: Date.now() + timeoutMs }, (err) => resolve(!err));
    });
  } finally {
    client.close();
  }
}

/** Whether GET PATH over a unix socket answers 200. */
export async function httpAnswers(socket: string, urlPath: string, timeoutMs = 5000): Promise<boolean> {
  if (!existsSync(socket)) return false;
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: urlPath, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function connects(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls `ready` every 5 ms until it answers true; the time from `since` (hrtime ns) in ms. */
export async function timeUntil(ready: () => Promise<boolean>, since: bigint, what: string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready().catch(() => false)) return Number(process.hrtime.bigint() - since) / 1e6;
    if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs} ms`);
    await sleep(5);
  }
}
