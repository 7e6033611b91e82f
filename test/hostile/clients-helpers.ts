import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { criClient } from '../helpers/cri.ts';
import { nodeBin, type TestDaemon } from '../helpers/daemon.ts';

/**
 * Clients that misbehave, for the hostile suite: raw connections that send
 * part of a request and leave, and the checks every case ends with
 * (berthd runs, all three doors answer, no descriptor is left).
 */

/** berthd's open descriptors, each with what it points at. */
export function openFds(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  const out: string[] = [];
  for (const fd of readdirSync(dir)) {
    try {
      out.push(`${fd} -> ${readlinkSync(path.join(dir, fd))}`);
    } catch {
      // Closed while we listed.
    }
  }
  return out;
}

/** Waits until berthd holds no more descriptors than `baseline` did; fails naming the extra ones after `timeoutMs`. */
export async function fdsBackTo(pid: number, baseline: string[], what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let now = openFds(pid);
  while (now.length > baseline.length) {
    if (Date.now() > deadline) {
      const extra = now.filter((f) => !baseline.includes(f));
      assert.fail(`${what}: berthd holds ${now.length} descriptors, ${baseline.length} before:\n${extra.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
    now = openFds(pid);
  }
}

/** The three sockets of a test daemon. */
export function socketsOf(d: TestDaemon): { native: string; docker: string; cri: string } {
  return { native: d.socket, docker: path.join(d.state, 'docker.sock'), cri: path.join(d.state, 'cri.sock') };
}

/** One well-behaved request on a unix socket; the connection is closed after it. */
export function request(socket: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request({ socketPath: socket, method, path: p, agent: false, headers: data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** berthd is running and every door answers. */
export async function answering(d: TestDaemon): Promise<void> {
  await new Promise((r) => setImmediate(r));
  assert.equal(d.proc.exitCode, null, `berthd exited:\n${d.logs().slice(-4000)}`);
  assert.equal(d.proc.signalCode, null, `berthd was killed:\n${d.logs().slice(-4000)}`);
  const s = socketsOf(d);
  assert.equal((await request(s.native, 'GET', '/_ping')).status, 200);
  assert.equal((await request(s.docker, 'GET', '/_ping')).status, 200);
  const cri = criClient(s.cri);
  try {
    const v = await cri.runtime('Version', {});
    assert.equal(v.runtime_name, 'berth');
  } finally {
    cri.close();
  }
}

/**
 * A raw client: connects, sends `send` (pieces written one after another),
 * waits until what it received matches `until` (when given), then leaves
 * at once. Resolves with what it received.
 */
export function hangUp(socket: string, send: Array<string | Buffer>, until?: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let got = '';
    let done = false;
    const timer = setTimeout(() => finish(new Error(`no answer matching ${until} within ${timeoutMs} ms; got: ${JSON.stringify(got.slice(0, 500))}`)), timeoutMs);
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      c.destroy();
      if (err) reject(err);
      else resolve(got);
    };
    c.on('error', () => finish());
    c.on('close', () => finish(until && !until.test(got) ? new Error(`closed before ${until}; got: ${JSON.stringify(got.slice(0, 500))}`) : undefined));
    c.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      if (until?.test(got)) finish();
    });
    c.on('connect', () => {
      for (const piece of send) c.write(piece);
      if (!until) finish();
    });
  });
}

/**
 * A CRI client in a process of its own, killed (SIGKILL) as a kubelet or
 * crictl that dies mid-call leaves: once `reached()` resolves (the test
 * sees the call at work on the server's side), or, without it, once the
 * client has had any answer (the start of a stream).
 */
export async function killedGrpcClient(socket: string, call: { service: 'RuntimeService' | 'ImageService'; method: string; request: object; kind: 'unary' | 'stream' }, reached?: () => Promise<void>): Promise<void> {
  const child = path.join(import.meta.dirname, 'grpc-client-child.ts');
  const p = spawn(nodeBin, ['--disable-warning=ExperimentalWarning', child, socket, call.service, call.method, JSON.stringify(call.request), call.kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => p.once('exit', r));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      p.stdout!.on('data', (b) => {
        out += b;
        if (out.includes(reached ? 'started\n' : 'answered\n')) resolve();
      });
      p.once('exit', (code) => reject(new Error(`the gRPC client exited (${code}) early: ${out}`)));
    });
    await reached?.();
  } finally {
    p.kill('SIGKILL');
    await exited;
  }
}
