import { humanAge, scaleBytes } from '../output.ts';

/**
 * Output helpers of the low-level commands (namespace, content, snapshot,
 * task, lease), which print what ctr prints.
 */

/**
 * ctr's tables: Go's tabwriter with padding 1 and every cell ended by a tab,
 * so each column, the last one too, is as wide as its widest cell plus one.
 */
export function ctrTable(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)) + 1);
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('') + '\n').join('');
}

/** ctr's labels column: k=v pairs sorted, joined by commas. */
export function labelList(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');
}

/** go-units HumanSize (content ls): 1000-based, four significant digits ("2.794MB"). */
export function ctrSize(bytes: number): string {
  const { value, unit } = scaleBytes(bytes, 1000);
  return `${Number(value.toPrecision(4))}${unit}`;
}

/** containerd's progress.Bytes (snapshot usage): 1024-based with one decimal ("4.0 KiB"). */
export function ctrBytes(bytes: number): string {
  const { value, unit } = scaleBytes(bytes, 1024);
  return `${value.toFixed(1)} ${unit}`;
}

/** go-units HumanDuration since a time (content ls's AGE): "About a minute", "3 hours". */
export function ctrAge(from: string): string {
  return humanAge(from).replace(/ ago$/, '');
}

/** "requires N argument(s)" in docker's words, with the command's usage; exit 1 as docker's CLI does. */
export function needArgs(stderr: NodeJS.WritableStream, name: string, usage: string, what: string): number {
  stderr.write(`berth: "${name}" requires ${what}.\nSee 'berth ${name} --help'.\n\nUsage:  ${usage}\n`);
  return 1;
}
