import { accessSync, constants, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import type { ErrorKind } from '../core/errors.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { spawnCollect } from './exec.ts';
import { pluginOwnerVar, stopOrphanPlugins } from './orphan-plugins.ts';

/**
 * A CNI client (spec 1.0 and 1.1, https://www.cni.dev/docs/spec/), the
 * TypeScript counterpart of libcni/go-cni.
 *
 * - A network is a config list `{cniVersion, name, plugins[]}`. ADD runs the
 *   plugins in order, each receiving the previous result as `prevResult`
 *   (chaining); DEL runs them in reverse with the cached ADD result.
 * - Every successful ADD is cached as JSON under `<cacheDir>/results/` with
 *   the config list, runtime args and result, so DEL and CHECK work after a
 *   daemon restart even when the network's record is gone (`delCached`).
 * - A failed ADD is rolled back (DEL of the whole list) before the error is
 *   thrown, so nothing stays half-wired.
 * - Plugin errors `{code, msg, details}` become BerthErrors naming the plugin
 *   and verb and carrying the plugin's message. A plugin that outlives
 *   `timeoutMs` (or `ctx.signal`) is killed: DeadlineExceeded / Canceled.
 * - STATUS and GC (CNI 1.1) are sent only to plugins whose VERSION lists
 *   1.1.0; older plugins (Debian's 1.1.x release speaks up to 1.0.0) are
 *   treated as ready and garbage is collected by the caller.
 *
 * Example:
 *   const cni = new Cni({ pluginDirs: ['/usr/lib/cni'], cacheDir: '/var/lib/berth/network/cni' });
 *   const res = await cni.add(ctx, list, { containerId, netns: '/run/berth/netns/abc', ifName: 'eth0' });
 *   await cni.del(ctx, list, { containerId, netns, ifName: 'eth0' });
 */
export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniConfigList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
  disableCheck?: boolean;
  disableGC?: boolean;
}

export interface CniRuntimeConf {
  containerId: string;
  /** Path of the network namespace (a bind-mounted nsfs file). */
  netns: string;
  ifName: string;
  /** CNI_ARGS key/value pairs. */
  args?: Array<[string, string]>;
  /** Values for plugins' declared capabilities (portMappings, ips, mac, ...), passed as runtimeConfig. */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIPConfig {
  /** CIDR notation: "10.88.0.5/16". */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: Array<{ dst: string; gw?: string }>;
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

export interface CniCacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  netns: string;
  config: CniConfigList;
  cniArgs?: Array<[string, string]>;
  capabilityArgs?: Record<string, unknown>;
  result: CniResult;
}

export interface CniOptions {
  pluginDirs: string[];
  /** Holds results/ (the ADD cache). Keep it on persistent storage so DEL works after a reboot. */
  cacheDir: string;
  timeoutMs?: number;
}

type Verb = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

/** CNI's well-known error codes (spec section "Error"), mapped to berth kinds. */
const kindByCode: Record<number, ErrorKind> = {
  1: 'FailedPrecondition',
  2: 'InvalidArgument',
  3: 'NotFound',
  4: 'InvalidArgument',
  5: 'Unknown',
  6: 'InvalidArgument',
  7: 'InvalidArgument',
  11: 'Unavailable',
  50: 'Unavailable',
  51: 'Unavailable',
};

export class Cni {
  readonly pluginDirs: string[];
  readonly cacheDir: string;
  readonly timeoutMs: number;
  #versions = new Map<string, string[]>();

  constructor(opts: CniOptions) {
    this.pluginDirs = opts.pluginDirs;
    this.cacheDir = opts.cacheDir;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /** Run ADD through the chain; cache and return the final result. Rolls back on failure. */
  async add(ctx: Ctx, list: CniConfigList, rt: CniRuntimeConf): Promise<CniResult> {
    validateConfigList(list);
    let prev: CniResult | undefined;
    try {
      for (const plugin of list.plugins) {
        prev = parseResult(await this.#invoke(ctx, 'ADD', list, plugin, rt, prev), plugin.type, list.cniVersion);
      }
      if (!prev) throw berthError('Internal', `CNI network "${list.name}": no result`);
      await this.#writeCache(list, rt, prev);
      return prev;
    } catch (err) {
      await this.#rollback(ctx, list, rt, prev);
      throw err;
    }
  }

  /**
   * Run DEL through the chain in reverse, with the cached result as
   * prevResult. Idempotent. `cached` is the attachment's cache entry when
   * the caller has read it already (undefined: read it here).
   */
  async del(ctx: Ctx, list: CniConfigList, rt: CniRuntimeConf, cached?: CniCacheEntry): Promise<void> {
    validateConfigList(list);
    cached ??= await this.readCache(list.name, rt.containerId, rt.ifName);
    const full: CniRuntimeConf = { ...rt, capabilityArgs: rt.capabilityArgs ?? cached?.capabilityArgs, args: rt.args ?? cached?.cniArgs };
    for (const plugin of [...list.plugins].reverse()) {
      await this.#invoke(ctx, 'DEL', list, plugin, full, cached?.result);
    }
    await rm(this.#cachePath(list.name, rt.containerId, rt.ifName), { force: true });
  }

  /**
   * DEL using only what the cache holds (config, args and result); no-op
   * without a cache entry. `netns` overrides the cached path ('' when the
   * namespace is gone, which plugins accept for DEL).
   */
  async delCached(ctx: Ctx, networkName: string, containerId: string, ifName: string, netns?: string, cached?: CniCacheEntry): Promise<boolean> {
    cached ??= await this.readCache(networkName, containerId, ifName);
    if (!cached) return false;
    await this.del(ctx, cached.config, { containerId, ifName, netns: netns ?? cached.netns, args: cached.cniArgs, capabilityArgs: cached.capabilityArgs }, cached);
    return true;
  }

  /** Drop an attachment's cache entry, for a caller that has undone the ADD itself. */
  async dropCache(networkName: string, containerId: string, ifName: string): Promise<void> {
    await rm(this.#cachePath(networkName, containerId, ifName), { force: true });
  }

  /** CHECK the attachment against its cached result (spec >= 0.4.0). */
  async check(ctx: Ctx, list: CniConfigList, rt: CniRuntimeConf): Promise<void> {
    validateConfigList(list);
    if (list.disableCheck) return;
    const cached = await this.readCache(list.name, rt.containerId, rt.ifName);
    if (!cached) throw berthError('NotFound', `CNI network "${list.name}": no cached result for container ${rt.containerId} ${rt.ifName}`);
    for (const plugin of list.plugins) {
      await this.#invoke(ctx, 'CHECK', list, plugin, { ...rt, capabilityArgs: rt.capabilityArgs ?? cached.capabilityArgs }, cached.result);
    }
  }

  /** VERSION of one plugin type: the spec versions it speaks. */
  async version(ctx: Ctx, type: string): Promise<{ cniVersion: string; supportedVersions: string[] }> {
    const bin = await this.findPlugin(type);
    const out = (await this.#exec(ctx, bin, 'VERSION', { CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '1.0.0' }), `CNI plugin "${type}" VERSION`)) as {
      cniVersion?: string;
      supportedVersions?: string[];
    };
    if (!out || !Array.isArray(out.supportedVersions)) throw berthError('Unknown', `CNI plugin "${type}" VERSION: malformed answer`);
    this.#versions.set(type, out.supportedVersions);
    return { cniVersion: out.cniVersion ?? '', supportedVersions: out.supportedVersions };
  }

  /** STATUS (CNI 1.1): throws the first plugin's "not ready" error. Plugins older than 1.1 count as ready. */
  async status(ctx: Ctx, list: CniConfigList): Promise<void> {
    validateConfigList(list);
    for (const plugin of list.plugins) {
      if (!(await this.#speaks11(ctx, plugin.type))) {
        await this.findPlugin(plugin.type);
        continue;
      }
      await this.#invoke(ctx, 'STATUS', { ...list, cniVersion: '1.1.0' }, plugin, undefined, undefined);
    }
  }

  /**
   * GC (CNI 1.1): tell plugins which attachments are still valid. Plugins
   * older than 1.1 are skipped; cache entries of this network not in
   * `valid` are DELeted through the cache either way.
   */
  async gc(ctx: Ctx, list: CniConfigList, valid: Array<{ containerId: string; ifName: string }>): Promise<void> {
    validateConfigList(list);
    const keep = new Set(valid.map((v) => `${v.containerId}/${v.ifName}`));
    for (const entry of await this.listCache()) {
      if (entry.networkName === list.name && !keep.has(`${entry.containerId}/${entry.ifName}`)) {
        await this.delCached(ctx, entry.networkName, entry.containerId, entry.ifName);
      }
    }
    if (list.disableGC) return;
    for (const plugin of list.plugins) {
      if (!(await this.#speaks11(ctx, plugin.type))) continue;
      const conf = { ...plugin, 'cni.dev/valid-attachments': valid.map((v) => ({ containerID: v.containerId, ifname: v.ifName })) };
      await this.#invoke(ctx, 'GC', { ...list, cniVersion: '1.1.0' }, conf, undefined, undefined);
    }
  }

  /**
   * At start-up, before anything reads the cache: kill the plugins a
   * previous daemon on this cache dir left running and wait for them to
   * exit (orphan-plugins.ts). Returns how many were killed.
   */
  stopOrphans(ctx: Ctx): Promise<number> {
    return stopOrphanPlugins(ctx, this.cacheDir, this.timeoutMs);
  }

  async readCache(networkName: string, containerId: string, ifName: string): Promise<CniCacheEntry | undefined> {
    try {
      // A few KB read on every teardown, when the thread pool is busiest (the task's removal runs beside it).
      const entry = JSON.parse(readFileSync(this.#cachePath(networkName, containerId, ifName), 'utf8')) as CniCacheEntry;
      return entry.kind === 'cniCacheV1' ? entry : undefined;
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** Every cached attachment, for reconciliation at start-up. */
  async listCache(): Promise<CniCacheEntry[]> {
    let names: string[];
    try {
      names = await readdir(path.join(this.cacheDir, 'results'));
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const out: CniCacheEntry[] = [];
    for (const n of names) {
      if (n.endsWith('.tmp')) {
        // A write a crash cut short: this life's writes go from file to rename without yielding, so none is in between.
        await rm(path.join(this.cacheDir, 'results', n), { force: true });
        continue;
      }
      try {
        const e = JSON.parse(await readFile(path.join(this.cacheDir, 'results', n), 'utf8')) as CniCacheEntry;
        if (e.kind === 'cniCacheV1') out.push(e);
      } catch {
        // a torn or foreign file is not ours to interpret
      }
    }
    return out;
  }

  /** The executable for a plugin type: the first of `pluginDirs` that holds it. */
  async findPlugin(type: string): Promise<string> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(type)) throw berthError('InvalidArgument', `invalid CNI plugin type "${type}"`);
    for (const dir of this.pluginDirs) {
      const p = path.join(dir, type);
      try {
        // One syscall on every plugin run: cheaper in place than through the thread pool.
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // try the next directory
      }
    }
    throw berthError('FailedPrecondition', `CNI plugin "${type}" not found in ${this.pluginDirs.join(', ')}`);
  }

  async #speaks11(ctx: Ctx, type: string): Promise<boolean> {
    const v = this.#versions.get(type) ?? (await this.version(ctx, type)).supportedVersions;
    return v.includes('1.1.0');
  }

  async #rollback(ctx: Ctx, list: CniConfigList, rt: CniRuntimeConf, prev: CniResult | undefined): Promise<void> {
    const c = cleanupCtx(ctx);
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.#invoke(c, 'DEL', list, plugin, rt, prev);
      } catch (err) {
        ctx.log.warn('CNI rollback DEL failed', { network: list.name, plugin: plugin.type, containerId: rt.containerId, err });
      }
    }
  }

  async #invoke(ctx: Ctx, verb: Verb, list: CniConfigList, plugin: CniPluginConf, rt: CniRuntimeConf | undefined, prev: CniResult | undefined): Promise<unknown> {
    const bin = await this.findPlugin(plugin.type);
    const stdin = JSON.stringify(pluginStdin(list, plugin, rt?.capabilityArgs, prev));
    const env: Record<string, string> = { CNI_COMMAND: verb, CNI_PATH: this.pluginDirs.join(':') };
    if (rt) {
      env.CNI_CONTAINERID = rt.containerId;
      env.CNI_NETNS = rt.netns;
      env.CNI_IFNAME = rt.ifName;
      if (rt.args?.length) env.CNI_ARGS = rt.args.map(([k, v]) => `${k}=${v}`).join(';');
    }
    return this.#exec(ctx, bin, verb, env, stdin, `CNI network "${list.name}": plugin ${plugin.type} ${verb}`);
  }

  async #exec(ctx: Ctx, bin: string, verb: Verb, cniEnv: Record<string, string>, stdin: string, what: string): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    let r;
    try {
      r = await spawnCollect(bin, [], { env: { ...cniEnv, [pluginOwnerVar]: this.cacheDir }, input: stdin, signal });
    } catch (err) {
      if (timeout.aborted) throw berthError('DeadlineExceeded', `${what}: timed out after ${this.timeoutMs / 1000}s`, err);
      if ((err as Error).name === 'AbortError') throw berthError('Canceled', `${what}: canceled`, err);
      throw berthError('Unknown', `${what}: ${(err as Error).message}`, err);
    }
    const text = r.stdout.trim();
    if (r.code !== 0) throw pluginError(what, r.code, text, r.stderr.trim());
    if (verb === 'DEL' || verb === 'CHECK' || verb === 'STATUS' || verb === 'GC' || !text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw berthError('Unknown', `${what}: unparsable result: ${text.slice(0, 200)}`);
    }
  }

  #cachePath(networkName: string, containerId: string, ifName: string): string {
    return path.join(this.cacheDir, 'results', `${networkName}-${containerId}-${ifName}`);
  }

  async #writeCache(list: CniConfigList, rt: CniRuntimeConf, result: CniResult): Promise<void> {
    const entry: CniCacheEntry = {
      kind: 'cniCacheV1',
      containerId: rt.containerId,
      ifName: rt.ifName,
      networkName: list.name,
      netns: rt.netns,
      config: list,
      cniArgs: rt.args,
      capabilityArgs: rt.capabilityArgs,
      result,
    };
    const file = this.#cachePath(list.name, rt.containerId, rt.ifName);
    // A few KB, on every container start: written in place rather than through three thread-pool round trips.
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.tmp`, JSON.stringify(entry), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}

/** The JSON a plugin reads on stdin (libcni's buildOneConfig). */
export function pluginStdin(list: CniConfigList, plugin: CniPluginConf, capabilityArgs: Record<string, unknown> | undefined, prev: CniResult | undefined): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (prev) conf.prevResult = prev;
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && capabilityArgs && capabilityArgs[cap] !== undefined) rc[cap] = capabilityArgs[cap];
  }
  if (Object.keys(rc).length) conf.runtimeConfig = rc;
  return conf;
}

export function pluginError(what: string, code: number | null, stdout: string, stderr: string): Error {
  try {
    const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    if (e && typeof e.msg === 'string') {
      const detail = e.details ? `; ${e.details}` : '';
      return berthError(kindByCode[e.code ?? 0] ?? 'Unknown', `${what}: ${e.msg}${detail}`);
    }
  } catch {
    // not a CNI error document; fall back to raw output
  }
  const raw = (stdout || stderr).slice(0, 500) || `exit status ${code}`;
  return berthError('Unknown', `${what}: ${raw}`);
}

/** Parse a config list from text (e.g. a .conflist file); InvalidArgument names the problem. */
export function parseConfigList(text: string, source = 'CNI config'): CniConfigList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw berthError('InvalidArgument', `${source}: invalid JSON: ${(err as Error).message}`);
  }
  validateConfigList(raw as CniConfigList, source);
  return raw as CniConfigList;
}

export function validateConfigList(list: CniConfigList, source = 'CNI config'): void {
  if (!list || typeof list !== 'object') throw berthError('InvalidArgument', `${source}: not an object`);
  if (typeof list.cniVersion !== 'string' || !/^\d+\.\d+\.\d+$/.test(list.cniVersion)) throw berthError('InvalidArgument', `${source}: missing or invalid cniVersion`);
  if (typeof list.name !== 'string' || !list.name) throw berthError('InvalidArgument', `${source}: missing name`);
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) throw berthError('InvalidArgument', `${source} "${list.name}": plugins must be a non-empty list`);
  for (const p of list.plugins) {
    if (!p || typeof p.type !== 'string' || !p.type) throw berthError('InvalidArgument', `${source} "${list.name}": every plugin needs a "type"`);
  }
}

function parseResult(raw: unknown, type: string, cniVersion: string): CniResult {
  const r = raw as CniResult | undefined;
  if (!r || typeof r !== 'object') throw berthError('Unknown', `CNI plugin ${type} ADD returned no result`);
  if (r.ips !== undefined && !Array.isArray(r.ips)) throw berthError('Unknown', `CNI plugin ${type} ADD: malformed "ips" in result`);
  return { ...r, cniVersion: r.cniVersion ?? cniVersion };
}
