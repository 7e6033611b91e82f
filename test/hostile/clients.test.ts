import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliCommand } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { runtimeSkipReason } from '../helpers/tasks.ts';
import { answering, fdsBackTo, hangUp, killedGrpcClient, openFds, request, socketsOf } from './clients-helpers.ts';

const skip = runtimeSkipReason();

/**
 * Clients that go away at every step, on all three sockets: before their
 * head ends, mid-body, right after an upgrade request whose answer is an
 * error, mid-hijack, mid-follow, mid gRPC call and stream. After each case
 * berthd still runs, every door answers, and berthd holds no more
 * descriptors than before it.
 */
describe('hostile clients: hanging up at every step', { skip, timeout: 600_000 }, () => {
  let e: Engine;
  let s: ReturnType<typeof socketsOf>;
  /** A container that prints a line every 0.2 s, for attach, exec and logs. */
  let ticker: string;
  /** A container that prints nothing: only its client's leaving can end an attach to it. */
  let quiet: string;

  before(async () => {
    e = await startEngine();
    s = socketsOf(e.d);
    const created = await request(s.docker, 'POST', '/containers/create?name=ticker', { Image: e.image, Cmd: ['sh', '-c', 'while true; do echo tick; sleep 0.2; done'], OpenStdin: true });
    assert.equal(created.status, 201, created.body);
    ticker = JSON.parse(created.body).Id;
    assert.equal((await request(s.docker, 'POST', `/containers/${ticker}/start`)).status, 204);
    const made = await request(s.docker, 'POST', '/containers/create?name=quiet', { Image: e.image, Cmd: ['sleep', '100000'], OpenStdin: true });
    assert.equal(made.status, 201, made.body);
    quiet = JSON.parse(made.body).Id;
    assert.equal((await request(s.docker, 'POST', `/containers/${quiet}/start`)).status, 204);
  });
  after(async () => {
    await e?.stop();
  });

  /** Runs `act` between two checks: berthd answers on every door and its descriptors come back to the count before. */
  const survives = async (what: string, act: () => Promise<unknown>) => {
    await answering(e.d);
    const pid = e.d.proc.pid!;
    const baseline = openFds(pid);
    await act();
    await answering(e.d);
    await fdsBackTo(pid, baseline, what);
  };

  const head = (method: string, p: string, headers: Record<string, string | number> = {}) =>
    `${method} ${p} HTTP/1.1\r\nHost: berth\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
  const upgrade = (protocol: string, extra: Record<string, string | number> = {}) => ({ Connection: 'Upgrade', Upgrade: protocol, ...extra });

  for (const door of ['native', 'docker'] as const) {
    const protocol = door === 'native' ? 'berth-stream' : 'tcp';
    const sock = () => (door === 'native' ? s.native : s.docker);

    it(`${door}: a client that connects and leaves at once, or mid-head`, async () => {
      await survives('connect and leave', () => hangUp(sock(), []));
      await survives('leave mid-head', () => hangUp(sock(), ['POST /containers/create HTTP/1.1\r\nHost: berth\r\nContent-Le']));
    });

    it(`${door}: a client that leaves mid-body`, async () => {
      const p = door === 'native' ? '/containers/run' : '/containers/create';
      await survives('leave mid-body', () => hangUp(sock(), [head('POST', p, { 'Content-Type': 'application/json', 'Content-Length': 4096 }), '{"Image": "busy']));
    });

    it(`${door}: an upgrade request whose answer is an error, from a client that leaves at once`, async () => {
      for (let i = 0; i < 20; i++) {
        await survives('upgrade answered with an error', async () => {
          const c = net.connect(sock());
          await new Promise((r) => c.once('connect', r));
          c.end(head('POST', '/containers/no-such-container/attach?stream=1&stdout=1', upgrade(protocol)));
          c.destroy();
          await new Promise((r) => c.once('close', r));
        });
      }
    });

    it(`${door}: an upgrade request that leaves mid-body`, async () => {
      const p = door === 'native' ? '/cli' : `/exec/no-such-exec/start`;
      await survives('upgrade left mid-body', () => hangUp(sock(), [head('POST', p, upgrade(protocol, { 'Content-Type': 'application/json', 'Content-Length': 500 })), '{"argv": ["ps"']));
    });

    it(`${door}: a client that leaves mid-hijack of an attach`, async () => {
      const q = door === 'docker' ? '?stream=1&stdout=1&stderr=1&stdin=1' : '';
      await survives('leave mid-attach', () => hangUp(sock(), [head('POST', `/containers/${ticker}/attach${q}`, upgrade(protocol))], /tick/));
    });

    it(`${door}: a client that leaves mid-hijack of an attach to a container that prints nothing`, async () => {
      const q = door === 'docker' ? '?stream=1&stdout=1&stderr=1&stdin=1' : '';
      await survives('leave an idle attach', () => hangUp(sock(), [head('POST', `/containers/${quiet}/attach${q}`, upgrade(protocol))], /101/));
      await survives('leave an idle attach without stdin', () => hangUp(sock(), [head('POST', `/containers/${quiet}/attach${door === 'docker' ? '?stream=1&stdout=1' : ''}`, upgrade(protocol))], /101/));
    });

    it(`${door}: a client that leaves right after an attach or exec request that succeeds`, async () => {
      const q = door === 'docker' ? '?stream=1&stdout=1&stderr=1&stdin=1' : '';
      for (let i = 0; i < 10; i++) {
        await survives('leave at once an attach', () => hangUp(sock(), [head('POST', `/containers/${quiet}/attach${q}`, upgrade(protocol))]));
        const body = door === 'docker' ? { Cmd: ['sleep', '1'], AttachStdout: true, AttachStdin: true } : { cmd: ['sleep', '1'], attachStdin: true };
        const made = await request(sock(), 'POST', `/containers/${quiet}/exec`, body);
        const id = JSON.parse(made.body).Id ?? JSON.parse(made.body).id;
        const start = door === 'docker' ? JSON.stringify({ Detach: false }) : '';
        await survives('leave at once an exec', () => hangUp(sock(), [head('POST', `/exec/${id}/start`, upgrade(protocol, { 'Content-Type': 'application/json', 'Content-Length': start.length })), start]));
      }
    });

    it(`${door}: a client that leaves mid-hijack of an exec`, async () => {
      const body = door === 'docker' ? { Cmd: ['sh', '-c', 'for i in $(seq 50); do echo exec-tick; sleep 0.1; done'], AttachStdout: true, AttachStdin: true } : { cmd: ['sh', '-c', 'for i in $(seq 50); do echo exec-tick; sleep 0.1; done'], attachStdin: true };
      const made = await request(sock(), 'POST', `/containers/${ticker}/exec`, body);
      assert.ok(made.status === 200 || made.status === 201, made.body);
      const id = JSON.parse(made.body).Id ?? JSON.parse(made.body).id;
      const start = door === 'docker' ? JSON.stringify({ Detach: false }) : '';
      await survives('leave mid-exec', () => hangUp(sock(), [head('POST', `/exec/${id}/start`, upgrade(protocol, { 'Content-Type': 'application/json', 'Content-Length': start.length })), start], /exec-tick/));
    });

    it(`${door}: a client that leaves mid-follow of logs`, async () => {
      const q = door === 'docker' ? '?follow=1&stdout=1&stderr=1' : '?follow=1';
      await survives('leave mid-logs', () => hangUp(sock(), [head('GET', `/containers/${ticker}/logs${q}`)], /tick[\s\S]*tick/));
    });

    it(`${door}: a client that leaves mid-follow of events, before and after an event`, async () => {
      await survives('leave an idle event stream', () => hangUp(sock(), [head('GET', '/events')], /200 OK[\s\S]*\r\n\r\n/));
      await survives('leave an event stream after an event', async () => {
        const left = hangUp(sock(), [head('GET', '/events')], /pause/);
        // The stream's head shows it is following; the pause is the event it then waits for.
        for (let i = 0; i < 200; i++) {
          assert.equal((await request(s.docker, 'POST', `/containers/${ticker}/pause`)).status, 204);
          assert.equal((await request(s.docker, 'POST', `/containers/${ticker}/unpause`)).status, 204);
          const done = await Promise.race([left.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))]);
          if (done) break;
        }
        await left;
      });
    });
  }

  it('native: POST /cli as an upgrade whose answer is an error, from a client that leaves at once', async () => {
    for (let i = 0; i < 20; i++) {
      await survives('/cli answered with an error', async () => {
        const c = net.connect(s.native);
        await new Promise((r) => c.once('connect', r));
        c.end(head('POST', '/cli', upgrade('berth-stream', { 'Content-Type': 'application/json', 'Content-Length': 2 })) + '{}');
        c.destroy();
        await new Promise((r) => c.once('close', r));
      });
    }
  });

  it('native: an upgrade request whose body never comes, from a client that stays, is let go', async () => {
    await survives('a /cli body that never comes', async () => {
      const c = net.connect(s.native);
      c.on('error', () => {});
      c.resume();
      await new Promise((r) => c.once('connect', r));
      c.write(head('POST', '/cli', upgrade('berth-stream', { 'Content-Type': 'application/json', 'Content-Length': 100 })) + '{"argv":');
      // berthd closes the connection once the body is overdue (30 s); the client only waits.
      await new Promise((r) => c.once('close', r));
    });
  });

  it('native: a hosted command whose client is killed while it runs', async () => {
    await survives('kill the client of a hosted logs -f', async () => {
      const cmd = cliCommand(['-H', `unix://${s.native}`, 'logs', '-f', ticker]);
      const p = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...cmd.env } });
      const exited = new Promise((r) => p.once('exit', r));
      let out = '';
      await new Promise<void>((resolve) => {
        p.stdout!.on('data', (b) => {
          out += b;
          if (/tick[\s\S]*tick/.test(out)) resolve();
        });
        p.once('exit', () => resolve());
      });
      assert.match(out, /tick/);
      p.kill('SIGKILL');
      await exited;
    });
  });

  it('docker: a client that leaves mid-pull', async () => {
    await survives('leave mid-pull', () => hangUp(s.docker, [head('POST', `/images/create?fromImage=${encodeURIComponent(e.image)}`)], /200 OK/));
  });

  it('cri: raw connections that leave before, during and after the HTTP/2 preface', async () => {
    await survives('connect and leave', () => hangUp(s.cri, []));
    await survives('leave mid-preface', () => hangUp(s.cri, ['PRI * HTTP/2.0\r\n']));
    await survives('garbage', () => hangUp(s.cri, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n']));
    // The preface and an empty SETTINGS frame: the server answers with its own SETTINGS.
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    await survives('leave after the preface', () => hangUp(s.cri, ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', settings], /[\s\S]{9}/));
  });

  it('cri: a client killed mid unary call (a pull from a registry that never answers)', async () => {
    const stall = net.createServer((c) => {
      conns.add(c);
      c.on('close', () => conns.delete(c));
      c.on('error', () => {});
      // Read, or berthd's close would never be seen here.
      c.resume();
    });
    const conns = new Set<net.Socket>();
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    const port = (stall.address() as net.AddressInfo).port;
    try {
      await survives('killed mid PullImage', async () => {
        await killedGrpcClient(s.cri, { service: 'ImageService', method: 'PullImage', request: { image: { image: `127.0.0.1:${port}/stall/img:1` } }, kind: 'unary' }, async () => {
          while (conns.size === 0) await new Promise((r) => setTimeout(r, 20));
        });
        // The pull is the call's: the client gone, berthd lets go of the registry too.
        while (conns.size) await new Promise((r) => setTimeout(r, 20));
      });
    } finally {
      for (const c of conns) c.destroy();
      await new Promise((r) => stall.close(r));
    }
  });

  it('cri: a client killed mid server stream', async () => {
    await survives('killed mid GetContainerEvents', () => killedGrpcClient(s.cri, { service: 'RuntimeService', method: 'GetContainerEvents', request: {}, kind: 'stream' }));
  });
  it('files a user names (--env-file, --label-file, seccomp=FILE, exec --env-file): a device, a FIFO or an oversized file is refused by name and never blocks berthd', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-hostile-files-'));
    try {
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const big = path.join(dir, 'big.env');
      await writeFile(big, Buffer.alloc(2 << 20, 'A'));
      const cases: Array<[string[], string, RegExp]> = [
        [['run', '--rm', '--env-file', '/dev/zero', e.image, 'true'], '/dev/zero', /open \/dev\/zero: not a regular file \(--env-file\)/],
        [['run', '--rm', '--env-file', fifo, e.image, 'true'], fifo, /not a regular file \(--env-file\)/],
        [['create', '--label-file', fifo, e.image], fifo, /not a regular file \(--label-file\)/],
        [['run', '--rm', '--security-opt', `seccomp=${fifo}`, e.image, 'true'], fifo, /opening seccomp profile .* not a regular file/],
        [['run', '--rm', '--env-file', big, e.image, 'true'], big, /larger than the 1048576-byte limit/],
        [['exec', '--env-file', fifo, ticker, 'true'], fifo, /not a regular file \(--env-file\)/],
      ];
      for (const [args, file, message] of cases) {
        await survives(args.join(' '), async () => {
          const r = await e.d.cli(args, { timeoutMs: 60_000 });
          assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
          assert.match(r.stderr, message);
          assert.ok(r.stderr.includes(file), r.stderr);
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
