import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import type { Series } from './report.ts';
import { sleep } from './proc.ts';

/** One thing measured in every round; `skip` says why it is not. */
export interface Case {
  key: string;
  label: string;
  skip?: string;
  note?: string;
  /** Untimed work before each sample (wipe a store, sync). */
  prepare?: (round: number) => Promise<void>;
  /** Returns the sample in ms. */
  measure: (round: number) => Promise<number>;
}

/**
 * Runs the cases interleaved (A B C A B C ...) so that drift in the
 * machine's load hits every engine alike. A case that fails is reported
 * with its error and not measured again.
 */
export async function interleave(cases: Case[], rounds: number, log: (s: string) => void): Promise<Series[]> {
  const series: Series[] = cases.map((c) => ({ key: c.key, label: c.label, unit: 'ms', samples: [], skip: c.skip, note: c.note }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of cases.entries()) {
      const s = series[i];
      if (s.skip) continue;
      try {
        await c.prepare?.(r);
        const ms = await c.measure(r);
        s.samples.push(ms);
        log(`round ${r + 1}/${rounds} ${c.label}: ${ms.toFixed(1)} ms`);
      } catch (err) {
        s.skip = failure(err);
        log(`${c.label}: ${s.skip}`);
      }
    }
  }
  for (const s of series) if (!s.skip && !s.samples.length) s.skip = 'no samples';
  return series;
}

/** The reason a case stopped: a berthd without the endpoint yet is a skip, anything else a failure. */
export function failure(err: unknown): string {
  const msg = (err as Error).message;
  const missing = /no such endpoint: (\S+ \S+)/.exec(msg);
  if (missing) return `berthd does not serve ${missing[1]} yet`;
  return `failed: ${msg.split('\n').slice(0, 3).join(' | ')}`;
}

/** Runs berth's untimed set-up (a pull); a failure becomes the skip reason of its cases. */
export async function berthSetup(skip: string | undefined, f: () => Promise<unknown>): Promise<string | undefined> {
  if (skip) return skip;
  try {
    await f();
    return undefined;
  } catch (err) {
    return failure(err);
  }
}

/** Skips a case with a clear message when berth or one of its commands is not there yet. */
export function skipUnless(cond: boolean | string, what: string): string | undefined {
  if (typeof cond === 'string') return cond;
  return cond ? undefined : `${what} is not implemented in this checkout yet`;
}

export interface Mem {
  rssKiB: number;
  pssKiB: number;
}

/** RSS and PSS of one process, from /proc/PID/smaps_rollup. */
export function memOf(pid: number): Mem {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: field('Rss'), pssKiB: field('Pss') };
}

export function sumMem(pids: number[]): Mem {
  return pids.map(memOf).reduce((a, b) => ({ rssKiB: a.rssKiB + b.rssKiB, pssKiB: a.pssKiB + b.pssKiB }), { rssKiB: 0, pssKiB: 0 });
}

/** PIDs whose command line is exactly `argv` (the bench's uniquely tagged container commands), with their parents. */
export function findProcesses(argv: string[]): { pid: number; ppid: number }[] {
  const want = argv.join('\0');
  const out: { pid: number; ppid: number }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0$/, '');
      if (cmd !== want) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.push({ pid: Number(name), ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) });
    } catch {
      // the process went away
    }
  }
  return out;
}

export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Time from `since` (hrtime ns) until an HTTP server answers on
 * 127.0.0.1:port: connect, send a GET, wait for a status line; retry
 * every 5 ms (gentle on a 2-core machine).
 */
export async function waitForHttp(port: number, since: bigint, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      let buf = '';
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(1000, () => done(false));
      s.on('error', () => done(false));
      s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
      s.on('data', (d) => {
        buf += d;
        if (buf.startsWith('HTTP/')) done(true);
      });
      s.on('end', () => done(buf.startsWith('HTTP/')));
    });
    if (ok) return Number(process.hrtime.bigint() - since) / 1e6;
    if (Date.now() > deadline) throw new Error(`nothing answered on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(5);
  }
}
