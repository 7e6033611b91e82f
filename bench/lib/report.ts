import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** One measured quantity: its samples (ms unless unit says otherwise), or why it was skipped. */
export interface Series {
  key: string;
  label: string;
  unit: string;
  samples: number[];
  skip?: string;
  note?: string;
}

/** Add each series' samples to the one of its key in `into`, or the series itself: rounds of one measure become one row. */
export function addSamples(into: Series[], from: Series[]): void {
  for (const s of from) {
    const have = into.find((x) => x.key === s.key);
    if (have) have.samples.push(...s.samples);
    else into.push(s);
  }
}

/** berth's figure over a peer's; target is the ratio the issue asks for (at most). */
export interface Ratio {
  num: string;
  den: string;
  target?: number;
}

export interface BenchResult {
  bench: string;
  series: Series[];
  ratios: Ratio[];
  notes: string[];
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'ms') return v >= 10_000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`;
  return `${v.toFixed(v >= 100 ? 0 : 2)} ${unit}`;
}

export function seriesMedian(r: BenchResult, key: string): number {
  const s = r.series.find((x) => x.key === key);
  return s && !s.skip ? median(s.samples) : NaN;
}

/** Prints the summary table of one benchmark: medians, spread, and berth/peer ratios. */
export function printResult(r: BenchResult): void {
  const rows = r.series.map((s) => {
    if (s.skip) return [s.label, 'skipped', '', '', '', s.skip];
    const sorted = [...s.samples].sort((a, b) => a - b);
    return [s.label, fmt(median(sorted), s.unit), fmt(sorted[0], s.unit), fmt(sorted[sorted.length - 1], s.unit), String(sorted.length), s.note ?? ''];
  });
  const head = ['', 'median', 'min', 'max', 'n', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const out: string[] = [``, `== ${r.bench} ==`, line(head), ...rows.map(line)];
  if (r.ratios.length) {
    out.push('', 'ratios (medians):');
    for (const q of r.ratios) {
      const a = r.series.find((s) => s.key === q.num);
      const b = r.series.find((s) => s.key === q.den);
      const v = seriesMedian(r, q.num) / seriesMedian(r, q.den);
      const target = q.target !== undefined ? `  target <= ${q.target}: ${Number.isFinite(v) ? (v <= q.target ? 'met' : 'NOT met') : 'n/a'}` : '';
      out.push(`  ${a?.label ?? q.num} / ${b?.label ?? q.den} = ${Number.isFinite(v) ? v.toFixed(2) : 'n/a'}${target}`);
    }
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  process.stdout.write(out.join('\n') + '\n');
}

/** Writes bench/results/<bench>-<time>.json with every sample, the medians and the ratios. */
export function writeResult(dir: string, r: BenchResult, context: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `${r.bench}-${stamp}.json`);
  const series = r.series.map((s) => ({ ...s, median: s.skip ? null : median(s.samples) }));
  const ratios = r.ratios.map((q) => ({ ...q, value: seriesMedian(r, q.num) / seriesMedian(r, q.den) || null }));
  const host = { cpus: os.cpus().length, kernel: os.release(), memMiB: Math.round(os.totalmem() / 2 ** 20), loadavg: os.loadavg() };
  writeFileSync(file, JSON.stringify({ bench: r.bench, date: new Date().toISOString(), host, ...context, series, ratios, notes: r.notes }, null, 2) + '\n');
  return file;
}

/** The targets of every benchmark in one table, for the end of `all`. */
export function printSummary(results: BenchResult[]): void {
  const out = ['', '== summary: berth against the targets (medians) =='];
  for (const r of results) {
    for (const q of r.ratios.filter((x) => x.target !== undefined)) {
      const label = (k: string) => r.series.find((s) => s.key === k)?.label ?? k;
      const v = seriesMedian(r, q.num) / seriesMedian(r, q.den);
      const verdict = Number.isFinite(v) ? `${v.toFixed(2)} (target <= ${q.target}: ${v <= q.target! ? 'met' : 'NOT met'})` : `n/a (${r.series.find((s) => s.key === q.num)?.skip ?? 'no figure'})`;
      out.push(`  ${r.bench}: ${label(q.num)} / ${label(q.den)} = ${verdict}`);
    }
  }
  process.stdout.write(out.join('\n') + '\n');
}
