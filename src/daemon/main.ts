// First: it puts V8's flag hash back before any built-in is compiled (see the module).
import { settleV8Flags } from './v8-flags.ts';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { berthError, hasErrno, kindOf } from '../core/errors.ts';
import type { Level } from '../core/log.ts';
import { createLogger } from '../core/log.ts';
import { Router, createApiServer } from '../api/native/server.ts';
import { registerCliHost } from './cli-host.ts';
import { configToml, daemonSection, defaultConfigToml, loadConfig } from './config.ts';
import { allSections, wireServices } from './wire.ts';
import { listenUnix } from './socket-bind.ts';

const usage = `Usage: berthd [OPTIONS] [config default|dump]

Options:
  --root DIR        persistent state (default /var/lib/berth)
  --state DIR       runtime state (default /run/berth)
  --config FILE     TOML configuration (default /etc/berth/berth.toml)
  --address PATH    native API socket (default <state>/berth.sock)
  --log-level LVL   debug, info, warn, error
  -h, --help        print this help
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      state: { type: 'string' },
      config: { type: 'string' },
      address: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const sections = allSections();
  if (positionals[0] === 'config' && positionals[1] === 'default') {
    process.stdout.write(defaultConfigToml(sections));
    return 0;
  }
  const cfg = await loadConfig(values.config ?? '/etc/berth/berth.toml', sections);
  const d = cfg.sections[daemonSection.name];
  if (values.root) d.root = path.resolve(values.root);
  if (values.state) d.state = path.resolve(values.state);
  if (values['log-level']) d.log_level = values['log-level'];
  d.address = values.address ? path.resolve(values.address) : (d.address as string) || path.join(d.state as string, 'berth.sock');
  if (positionals[0] === 'config' && positionals[1] === 'dump') {
    process.stdout.write(configToml(cfg));
    return 0;
  }
  if (positionals.length) throw berthError('InvalidArgument', `unknown command "${positionals.join(' ')}"`);

  const log = createLogger({ level: d.log_level as Level, fields: { component: 'berthd' } });
  const root = d.root as string;
  const state = d.state as string;
  await mkdir(root, { recursive: true, mode: 0o711 });
  await mkdir(state, { recursive: true, mode: 0o711 });
  const releaseLock = await lockRoot(root);
  // bin/berthd's one malloc arena is berthd's alone: the programs it runs get their usual ones.
  delete process.env.MALLOC_ARENA_MAX;

  const shutdown = new AbortController();
  const router = new Router();
  const services = await wireServices({ cfg, log, router, shutdown: shutdown.signal });
  const server = createApiServer({ router, log, shutdown: shutdown.signal });
  const address = d.address as string;
  if (d.host_cli) registerCliHost(router, { address, log });
  await listenUnix(server, address, { mode: d.socket_mode as string, group: d.socket_group as string });
  // Every socket answers from here; what needs the engine waits for its recovery (wire.ts).
  log.info('berthd listening', { address, ms: Math.round(process.uptime() * 1000) });
  // The stop after a failed recovery and after a signal alike: the socket, the services, the lock.
  const stopServing = async () => {
    shutdown.abort(berthError('Canceled', 'berthd is shutting down'));
    server.close();
    server.closeAllConnections();
    await services.close();
    await rm(address, { force: true });
    await releaseLock();
  };
  try {
    await services.recover();
  } catch (err) {
    await stopServing();
    throw err;
  }
  log.info('berthd ready', { root, state, address, pid: process.pid, ms: Math.round(process.uptime() * 1000) });
  settleV8Flags();

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info('shutting down', { signal: sig });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await stopServing();
  log.info('stopped');
  return 0;
}

/** One berthd per root: a pid file whose owner is checked for liveness. */
async function lockRoot(root: string): Promise<() => Promise<void>> {
  const pidFile = path.join(root, 'berthd.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(pidFile, 'wx', 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await rm(pidFile, { force: true });
      };
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (pid > 0 && pid !== process.pid && (await isBerthd(pid))) {
        throw berthError('AlreadyExists', `another berthd (pid ${pid}) is already running on root ${root}`);
      }
      await rm(pidFile, { force: true });
    }
  }
  throw berthError('Unavailable', `cannot lock root ${root}`);
}

async function isBerthd(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('daemon/main.ts') || cmdline.includes('berthd');
  } catch {
    return false;
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`berthd: ${err instanceof Error ? err.message : String(err)}\n`);
    if (kindOf(err) === 'Unknown' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  },
);
