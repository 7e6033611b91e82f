import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { Duplex } from 'node:stream';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { criClient, rejectsWith } from '../helpers/cri.ts';
import { startCriPods, type CriPods } from '../helpers/cri-pods.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { collect, httpUpgrade, SpdyClient, spdyCommand, spdyConnect, wsCommand, wsConnect } from '../helpers/streaming.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (runc, netns, CNI)' : undefined;
const crictlBin = '/work/shared/cri-conformance/bin/crictl';

/**
 * The CRI streaming server on a real berthd: Exec, Attach and PortForward
 * URLs driven by the test clients over SPDY/3.1 and WebSocket, against
 * berth containers in namespace k8s.io (the container service's exec and
 * attach) and a pod sandbox with servers listening in its network
 * namespace; tokens, bad requests, a client that vanishes; and the stock
 * crictl. Traffic stays on loopback and the test's bridge.
 */
describe('CRI streaming', { skip, timeout: 600_000 }, () => {
  let e: Engine;
  let cri: ReturnType<typeof criClient>;
  let shell: string; // a container running sleep, for execs
  let echo: string; // a container reading its stdin, for attach
  let pod: string;
  let netns: string;
  let tmp: string;
  const servers: ChildProcess[] = [];

  const k8s = (args: string[]) => e.d.cli(['-n', 'k8s.io', ...args]);
  const run = async (args: string[]) => {
    const r = await k8s(['run', '-d', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };

  before(async () => {
    e = await startEngine();
    cri = criClient(path.join(e.d.state, 'cri.sock'));
    tmp = await mkdtemp(path.join(os.tmpdir(), 'berth-cri-stream-'));
    const pulled = await k8s(['pull', e.image]);
    assert.equal(pulled.code, 0, pulled.stderr);
    shell = await run([e.image, 'sleep', '3600']);
    echo = await run(['-i', e.image, 'sh', '-c', 'while read l; do echo "got $l"; done']);
    const { pod_sandbox_id } = await cri.runtime('RunPodSandbox', { config: { metadata: { name: 'pf', uid: 'uid-pf', namespace: 'default', attempt: 0 }, hostname: 'pf' } });
    pod = pod_sandbox_id;
    netns = JSON.parse((await cri.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info.info).netNamespacePath;
    // An HTTP server and a line echo server on the pod's loopback only.
    const www = path.join(tmp, 'www');
    await mkdir(www);
    await writeFile(path.join(www, 'index.html'), 'hello from the pod\n');
    await startIn(['/bin/busybox', 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', www]);
    const code = "require('net').createServer((s)=>{s.write('echo ready\\n');s.pipe(s)}).listen(9090,'127.0.0.1',()=>console.log('listening'))";
    await startIn([process.execPath, '-e', code], 'listening');
  });

  /** A process in the pod's network namespace; waits until it answers on its port. */
  async function startIn(cmd: string[], ready?: string): Promise<void> {
    const p = spawn('nsenter', [`--net=${netns}`, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    servers.push(p);
    if (ready) {
      await new Promise<void>((resolve, reject) => {
        p.stdout!.on('data', (d) => String(d).includes(ready) && resolve());
        p.once('exit', (c) => reject(new Error(`server exited ${c}`)));
      });
    } else {
      // httpd -f prints nothing: it is up once it has bound its port in the netns.
      for (;;) {
        const r = spawn('nsenter', [`--net=${netns}`, '/bin/busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/']);
        if ((await new Promise((res) => r.once('exit', res))) === 0) break;
        await new Promise((r2) => setTimeout(r2, 50));
      }
    }
  }

  after(async () => {
    for (const p of servers) if (p.exitCode === null) p.kill('SIGKILL');
    if (pod) await cri?.runtime('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => {});
    const ids = e ? (await k8s(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean) : [];
    if (ids.length) await k8s(['rm', '-f', ...ids]);
    cri?.close();
    await e?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const execUrl = async (cmd: string[], o: { tty?: boolean; stdin?: boolean; stderr?: boolean; id?: string } = {}) =>
    (await cri.runtime('Exec', { container_id: o.id ?? shell, cmd, tty: !!o.tty, stdin: !!o.stdin, stdout: true, stderr: o.stderr ?? !o.tty })).url as string;

  const status = (text: string) => JSON.parse(text) as { status: string; reason?: string; details?: { causes: Array<{ reason: string; message: string }> } };

  it('answers Exec with a URL on the loopback streaming server', async () => {
    const url = await execUrl(['true']);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{8}$/);
  });

  it('exec over SPDY v4: stdout and stderr apart, exit codes in the error stream as a Status', async () => {
    const r = await spdyCommand(await execUrl(['sh', '-c', 'echo out; echo err >&2; exit 3']));
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    const st = status(r.error);
    assert.equal(st.status, 'Failure');
    assert.equal(st.reason, 'NonZeroExitCode');
    assert.deepEqual(st.details!.causes, [{ reason: 'ExitCode', message: '3' }]);
    const ok = await spdyCommand(await execUrl(['echo', 'fine']));
    assert.equal(ok.stdout, 'fine\n');
    assert.equal(status(ok.error).status, 'Success');
  });

  it('exec over SPDY: stdin reaches the command and its end is end of file', async () => {
    const r = await spdyCommand(await execUrl(['sh', '-c', 'cat; echo done'], { stdin: true }), { stdin: 'hello\nworld\n' });
    assert.equal(r.stdout, 'hello\nworld\ndone\n');
    assert.equal(status(r.error).status, 'Success');
    const empty = await spdyCommand(await execUrl(['sh', '-c', 'cat; echo done'], { stdin: true }), { stdin: '' });
    assert.equal(empty.stdout, 'done\n', 'stdin closed without any input');
  });

  it('exec over the older SPDY protocols: v2/v3 carry only a failure message', async () => {
    for (const protocol of ['v3.channel.k8s.io', 'v2.channel.k8s.io']) {
      const r = await spdyCommand(await execUrl(['sh', '-c', 'echo x; exit 2']), { protocol });
      assert.equal(r.stdout, 'x\n');
      assert.match(r.error, /non-zero exit code.*exit code 2/);
      const ok = await spdyCommand(await execUrl(['true']), { protocol });
      assert.equal(ok.error, '');
    }
  });

  it('exec with a tty over SPDY: the size sent on the resize stream is seen inside', async () => {
    const url = await execUrl(['sh'], { tty: true, stdin: true });
    const { client } = await spdyConnect(url, ['v4.channel.k8s.io']);
    const error = await client.open({ streamtype: 'error' });
    error.end();
    const stdin = await client.open({ streamtype: 'stdin' });
    const stdout = await client.open({ streamtype: 'stdout' });
    const resize = await client.open({ streamtype: 'resize' });
    let out = '';
    stdout.data.on('data', (d) => (out += d));
    const errText = collect(error.data);
    resize.write(JSON.stringify({ Width: 100, Height: 40 }) + '\n');
    // The resize and the typed command travel apart: ask until the shell sees the size.
    while (!out.includes('40 100')) {
      stdin.write('stty size\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    resize.write(JSON.stringify({ Width: 90, Height: 30 }));
    while (!out.includes('30 90')) {
      stdin.write('stty size\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    stdin.write('exit 4\n');
    assert.equal(status((await errText).toString()).details!.causes[0].message, '4');
    client.close();
  });

  it('exec over WebSocket v5, v4 and base64: channels, the close signal ends stdin, exit codes', async () => {
    const v5 = await wsCommand(await execUrl(['sh', '-c', 'cat; echo err >&2; exit 5'], { stdin: true }), { stdin: 'via ws\n' });
    assert.equal(v5.stdout, 'via ws\n');
    assert.equal(v5.stderr, 'err\n');
    assert.deepEqual(status(v5.error).details!.causes, [{ reason: 'ExitCode', message: '5' }]);
    assert.equal(v5.closeCode, 1000);
    const v4 = await wsCommand(await execUrl(['echo', 'four']), { protocol: 'v4.channel.k8s.io' });
    assert.equal(v4.stdout, 'four\n');
    assert.equal(status(v4.error).status, 'Success');
    // base64: text messages, the channel as a digit.
    const ws = await wsConnect(await execUrl(['echo', 'sixty-four']), ['v4.base64.channel.k8s.io']);
    assert.equal(ws.protocol, 'v4.base64.channel.k8s.io');
    const msgs: string[] = [];
    ws.on('message', (m: Buffer, binary: boolean) => {
      assert.equal(binary, false);
      msgs.push(m.toString());
    });
    await new Promise((r) => ws.once('close', r));
    const stdout = msgs.filter((m) => m[0] === '1').map((m) => Buffer.from(m.slice(1), 'base64').toString()).join('');
    assert.equal(stdout, 'sixty-four\n');
    assert.equal(status(Buffer.from(msgs.find((m) => m[0] === '3')!.slice(1), 'base64').toString()).status, 'Success');
  });

  it('exec with a tty over WebSocket: resize on channel 4', async () => {
    const ws = await wsConnect(await execUrl(['sh'], { tty: true, stdin: true }), ['v5.channel.k8s.io']);
    let out = '';
    ws.on('message', (m: Buffer) => m[0] === 1 && (out += m.subarray(1).toString()));
    const closed = new Promise((r) => ws.once('close', r));
    ws.send(4, JSON.stringify({ Width: 77, Height: 22 }));
    while (!out.includes('22 77')) {
      ws.send(0, 'stty size\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    ws.send(0, 'exit\n');
    await closed;
  });

  it('attach joins the container\'s own process; leaving it keeps the container running', async () => {
    const url = (await cri.runtime('Attach', { container_id: echo, stdin: true, stdout: true, stderr: true })).url as string;
    assert.match(url, /\/attach\//);
    const { client } = await spdyConnect(url, ['v4.channel.k8s.io']);
    const error = await client.open({ streamtype: 'error' });
    error.end();
    const stdin = await client.open({ streamtype: 'stdin' });
    const stdout = await client.open({ streamtype: 'stdout' });
    await client.open({ streamtype: 'stderr' });
    let out = '';
    stdout.data.on('data', (d) => (out += d));
    await stdout.replied;
    // Attach sees only what is written after it: send until the echo comes back.
    while (!out.includes('got ping')) {
      stdin.write('ping\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    client.socket.destroy();
    const inspect = await k8s(['inspect', '--format', '{{.State.Status}}', echo]);
    assert.equal(inspect.stdout.trim(), 'running');
    // And over a WebSocket.
    const ws = await wsConnect((await cri.runtime('Attach', { container_id: echo, stdin: true, stdout: true })).url, ['v5.channel.k8s.io']);
    let wout = '';
    ws.on('message', (m: Buffer) => m[0] === 1 && (wout += m.subarray(1).toString()));
    while (!wout.includes('got pong')) {
      ws.send(0, 'pong\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    ws.close();
    await new Promise((r) => ws.once('close', r));
  });

  it('port-forward over SPDY: two ports, two concurrent connections, a refused port reported on its error stream', async () => {
    const url = (await cri.runtime('PortForward', { pod_sandbox_id: pod, port: [] })).url as string;
    assert.match(url, /\/portforward\//);
    const { client, protocol } = await spdyConnect(url, ['portforward.k8s.io']);
    assert.equal(protocol, 'portforward.k8s.io');
    const pair = async (port: number, requestID: string) => {
      const error = await client.open({ streamtype: 'error', port: String(port), requestid: requestID });
      error.end();
      const data = await client.open({ streamtype: 'data', port: String(port), requestid: requestID });
      return { error, data };
    };
    const [a, b] = await Promise.all([pair(8080, '0'), pair(8080, '1')]);
    const c = await pair(9090, '2');
    const got = (s: { data: { data: NodeJS.ReadableStream } }) => collect(s.data.data);
    const [ra, rb] = [got(a), got(b)];
    a.data.write('GET /index.html HTTP/1.0\r\n\r\n');
    b.data.write('GET /index.html HTTP/1.0\r\n\r\n');
    assert.match((await ra).toString(), /^HTTP\/1\.[01] 200[\s\S]*hello from the pod\n$/);
    assert.match((await rb).toString(), /hello from the pod/);
    let echoed = '';
    c.data.data.on('data', (d) => (echoed += d));
    c.data.write('over spdy\n');
    while (!echoed.includes('over spdy')) await new Promise((r) => setTimeout(r, 20));
    assert.match(echoed, /^echo ready\n/);
    c.data.end();
    await collect(c.error.data);
    const bad = await pair(7, '3');
    assert.match((await collect(bad.error.data)).toString(), /error forwarding port 7 to pod .*refused/i);
    client.close();
  });

  it('port-forward over WebSocket: the request\'s ports, the port number first on each channel', async () => {
    const url = (await cri.runtime('PortForward', { pod_sandbox_id: pod, port: [8080, 9090] })).url as string;
    const ws = await wsConnect(url, ['v4.channel.k8s.io']);
    const chans: Buffer[][] = [[], [], [], []];
    ws.on('message', (m: Buffer) => chans[m[0]]?.push(m.subarray(1)));
    const text = (n: number) => Buffer.concat(chans[n]).toString('latin1');
    while (chans.some((c) => c.length === 0)) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([0, 1, 2, 3].map((n) => chans[n][0].readUInt16LE(0)), [8080, 8080, 9090, 9090]);
    chans.forEach((c) => c.shift());
    ws.send(2, 'over ws\n');
    ws.send(0, 'GET /index.html HTTP/1.0\r\n\r\n');
    while (!text(0).includes('hello from the pod') || !text(2).includes('over ws')) await new Promise((r) => setTimeout(r, 20));
    ws.close();
    await new Promise((r) => ws.once('close', r));
  });

  it('port-forward with SPDY tunnelled in a WebSocket (kubectl\'s SPDY/3.1+portforward.k8s.io)', async () => {
    const url = (await cri.runtime('PortForward', { pod_sandbox_id: pod, port: [8080] })).url as string;
    const ws = await wsConnect(url, ['SPDY/3.1+portforward.k8s.io']);
    assert.equal(ws.protocol, 'SPDY/3.1+portforward.k8s.io');
    // The test's SPDY client over the WebSocket's binary messages.
    const carrier = new Duplex({
      write(chunk: Buffer, _enc, cb) {
        ws.frame(2, chunk);
        cb();
      },
      read() {},
    });
    ws.on('message', (m: Buffer) => carrier.push(m));
    ws.once('close', () => carrier.push(null));
    const client = new SpdyClient(carrier as unknown as net.Socket, Buffer.alloc(0));
    const error = await client.open({ streamtype: 'error', port: '8080', requestid: '0' });
    error.end();
    const data = await client.open({ streamtype: 'data', port: '8080', requestid: '0' });
    const body = collect(data.data);
    data.write('GET /index.html HTTP/1.0\r\n\r\n');
    assert.match((await body).toString(), /hello from the pod/);
    ws.close();
    await new Promise((r) => ws.once('close', r));
  });

  it('a token is single-use; an unknown one is 404 as from kubelet', async () => {
    const url = await execUrl(['true']);
    await spdyCommand(url);
    for (const u of [url, url.replace(/[^/]+$/, 'AAAAAAAA')]) {
      const again = await httpUpgrade(u, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' });
      assert.equal(again.status, 404);
      assert.equal(again.body, '404 page not found\n');
    }
    // A handshake that fails: no common protocol is 403 naming what the server accepts.
    const refused = await httpUpgrade(await execUrl(['true']), { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v9.channel.k8s.io' });
    assert.equal(refused.status, 403);
    assert.match(refused.headers['x-accepted-stream-protocol-versions'], /v4\.channel\.k8s\.io/);
  });

  it('refuses bad requests with the codes containerd gives', async () => {
    const bad = (await rejectsWith(cri.runtime('Exec', { container_id: shell, cmd: ['sh'], tty: true, stderr: true, stdout: true }), grpc.status.INVALID_ARGUMENT)).details;
    assert.match(bad, /tty and stderr/);
    await rejectsWith(cri.runtime('Exec', { container_id: shell, cmd: ['sh'] }), grpc.status.INVALID_ARGUMENT);
    await rejectsWith(cri.runtime('Exec', { container_id: '', cmd: ['sh'], stdout: true }), grpc.status.INVALID_ARGUMENT);
    await rejectsWith(cri.runtime('Exec', { container_id: 'nosuchcontainer', cmd: ['sh'], stdout: true }), grpc.status.NOT_FOUND);
    await rejectsWith(cri.runtime('Attach', { container_id: 'nosuchcontainer', stdout: true }), grpc.status.NOT_FOUND);
    const stopped = (await k8s(['create', e.image, 'true'])).stdout.trim();
    assert.match((await rejectsWith(cri.runtime('Exec', { container_id: stopped, cmd: ['sh'], stdout: true }), grpc.status.FAILED_PRECONDITION)).details, /CONTAINER_CREATED/);
    await rejectsWith(cri.runtime('PortForward', { pod_sandbox_id: 'nosuchpod' }), grpc.status.NOT_FOUND);
    await rejectsWith(cri.runtime('PortForward', { pod_sandbox_id: '' }), grpc.status.INVALID_ARGUMENT);
    await rejectsWith(cri.runtime('PortForward', { pod_sandbox_id: pod, port: [0] }), grpc.status.INVALID_ARGUMENT);
  });

  it('a client that goes away mid-stream: the exec is killed, berthd keeps no descriptor and answers', async () => {
    const berthd = e.d.proc.pid!;
    const fds = () => readdirSync(`/proc/${berthd}/fd`).length;
    const before = fds();
    const marker = `sleep 7${process.pid % 1000}`;
    const sleeping = () =>
      readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() === marker;
        } catch {
          return false;
        }
      });
    /** Wait for a state; a state that never comes fails naming it, with berthd's descriptors. */
    const until = async (what: string, cond: () => boolean) => {
      for (const deadline = Date.now() + 60_000; !cond(); await new Promise((r) => setTimeout(r, 50))) {
        if (Date.now() > deadline) assert.fail(`${what}: still not so; berthd has ${fds()} descriptors (${before} before): ${readdirSync(`/proc/${berthd}/fd`).map((f) => { try { return readlinkSync(`/proc/${berthd}/fd/${f}`); } catch { return '?'; } }).join(' ')}`);
      }
    };
    const url = await execUrl(['sh', '-c', `exec ${marker}`], { stdin: true });
    const { client } = await spdyConnect(url, ['v4.channel.k8s.io']);
    for (const t of ['error', 'stdin', 'stdout', 'stderr']) await (await client.open({ streamtype: t })).replied;
    await until('the exec runs', sleeping);
    client.socket.destroy();
    await until('the exec is killed', () => !sleeping());
    await until('no descriptor is left', () => fds() <= before);
    assert.equal((await cri.runtime('Version', {})).runtime_name, 'berth');
    // A WebSocket client that leaves before its first read.
    const ws = await wsConnect(await execUrl(['sh', '-c', `exec ${marker}`], { stdin: true }), ['v5.channel.k8s.io']);
    await until('the second exec runs', sleeping);
    ws.socket.destroy();
    await until('the second exec is killed', () => !sleeping());
    await until('no descriptor is left after the WebSocket', () => fds() <= before);
    // A port-forward client that vanishes with a connection open in the pod.
    const pf = await spdyConnect((await cri.runtime('PortForward', { pod_sandbox_id: pod })).url, ['portforward.k8s.io']);
    (await pf.client.open({ streamtype: 'error', port: '9090', requestid: '0' })).end();
    const data = await pf.client.open({ streamtype: 'data', port: '9090', requestid: '0' });
    let greeting = '';
    data.data.on('data', (d) => (greeting += d));
    await until('the pod\'s server answers', () => greeting.includes('echo ready'));
    pf.client.socket.destroy();
    await until('no descriptor is left after the port-forward', () => fds() <= before);
    assert.equal((await cri.runtime('Version', {})).runtime_name, 'berth');
  });

  it('the stock crictl: exec -i and -it, port-forward', { skip: !existsSync(crictlBin) && 'no crictl here' }, async () => {
    const sock = `unix://${path.join(e.d.state, 'cri.sock')}`;
    const crictl = (args: string[], input?: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = spawn(crictlBin, ['--runtime-endpoint', sock, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.stdin.end(input ?? '');
        p.once('exit', (code) => resolve({ code, out, err }));
      });
    const piped = await crictl(['exec', '-i', shell, 'sh', '-c', 'cat; echo bye; exit 6'], 'from crictl\n');
    assert.equal(piped.out, 'from crictl\nbye\n');
    // crictl 1.26 reports the exit code it read from the error stream, and fails.
    assert.match(piped.err, /command terminated with exit code 6/);
    assert.notEqual(piped.code, 0);
    const fine = await crictl(['exec', '-i', shell, 'sh', '-c', 'echo ok >&2']);
    assert.deepEqual([fine.code, fine.out, fine.err], [0, '', 'ok\n'], 'stderr to stderr');
    // -it needs a terminal: util-linux script gives crictl one.
    const tty = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn('script', ['-qec', `${crictlBin} --runtime-endpoint ${sock} exec -it ${shell} sh -c 'tty; stty size'`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, COLUMNS: '91', LINES: '33' } });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.once('exit', (code) => resolve({ code, out }));
    });
    assert.equal(tty.code, 0, tty.out);
    assert.match(tty.out, /\/dev\/pts\/\d+/);
    // port-forward: crictl listens on a local port and tunnels each connection over one SPDY session.
    const local = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const pf = spawn(crictlBin, ['--runtime-endpoint', sock, 'port-forward', pod, `${local}:8080`], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve) => pf.stdout.on('data', (d) => String(d).includes('Forwarding from') && resolve()));
      const fetchOnce = () => fetch(`http://127.0.0.1:${local}/index.html`).then((r) => r.text());
      assert.deepEqual(await Promise.all([fetchOnce(), fetchOnce()]), ['hello from the pod\n', 'hello from the pod\n']);
    } finally {
      pf.kill('SIGINT');
      await new Promise((r) => pf.once('exit', r));
    }
  });
});

/**
 * The same through containers made by the CRI itself (CreateContainer in a
 * pod), as kubelet and crictl use it: port-forward to a server in the pod's
 * container, attach to a container's stdin (stdin_once) with the stock
 * crictl, exec in it.
 */
describe('CRI streaming into CRI containers', { skip, timeout: 600_000 }, () => {
  let p: CriPods;
  let pod: { id: string; config: object };

  before(async () => {
    p = await startCriPods();
    pod = await p.runPod('web');
  });
  after(async () => {
    await p?.stop();
  });

  it('port-forwards to a server in the pod\'s container', async () => {
    const web = await p.container(pod, 'httpd', { command: ['/bin/busybox', 'httpd', '-f', '-p', '8081', '-h', '/etc'] }, { start: true });
    while ((await p.exec(web, ['/bin/busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8081/hostname'])).exit_code !== 0) await new Promise((r) => setTimeout(r, 50));
    const url = (await p.cri.runtime('PortForward', { pod_sandbox_id: pod.id, port: [8081] })).url as string;
    const { client } = await spdyConnect(url, ['portforward.k8s.io']);
    (await client.open({ streamtype: 'error', port: '8081', requestid: '0' })).end();
    const data = await client.open({ streamtype: 'data', port: '8081', requestid: '0' });
    const body = collect(data.data);
    data.write('GET /hostname HTTP/1.0\r\n\r\n');
    assert.match((await body).toString(), /\r\n\r\nweb-host\n$/);
    client.close();
  });

  it('crictl attach feeds a stdin_once container until its input ends; crictl exec runs in it', { skip: !existsSync(crictlBin) && 'no crictl here' }, async () => {
    const id = await p.container(pod, 'reader', { command: ['sh', '-c', 'while read l; do echo "got $l"; done; echo bye'], stdin: true, stdin_once: true }, { start: true });
    const sock = `unix://${path.join(p.e.d.state, 'cri.sock')}`;
    const crictl = (args: string[], input: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(crictlBin, ['--runtime-endpoint', sock, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (err += d));
        c.stdin.end(input);
        c.once('exit', (code) => resolve({ code, out, err }));
      });
    const hostname = await crictl(['exec', id, 'cat', '/etc/hostname'], '');
    assert.deepEqual([hostname.code, hostname.out], [0, 'web-host\n'], hostname.err);
    const attached = await crictl(['attach', '-i', id], 'one\ntwo\n');
    assert.equal(attached.code, 0, attached.err);
    assert.equal(attached.out, 'got one\ngot two\nbye\n');
    while ((await p.status(id)).status.state !== 'CONTAINER_EXITED') await new Promise((r) => setTimeout(r, 50));
  });
});

describe('CRI streaming config', { skip, timeout: 120_000 }, () => {
  it('a bad port or one in use stops berthd, naming the key', async () => {
    await assert.rejects(startDaemon({ config: 'version = 1\n[cri]\nstream_server_port = 70000\n' }), /cri\.stream_server_port.*70000/);
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      await assert.rejects(startDaemon({ config: `version = 1\n[cri]\nstream_server_port = ${port}\n` }), /cri\.stream_server_port.*EADDRINUSE/);
    } finally {
      busy.close();
    }
  });
});
