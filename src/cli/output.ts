/** Output helpers shared by commands: docker-style tables, sizes, ages and times. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] + 3)))
      .join('')
      .trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join('\n') + '\n';
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `bytes` divided down by `base` until it is below it (or the units run out), with the unit it is then in. */
export function scaleBytes(bytes: number, base: 1000 | 1024): { value: number; unit: string; scaled: boolean } {
  const units = base === 1000 ? DECIMAL_UNITS : BINARY_UNITS;
  let v = bytes;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return { value: v, unit: units[i], scaled: i > 0 };
}

/** Docker's human sizes: 1000-based, 3 significant digits ("4.26MB"). */
export function humanSize(bytes: number): string {
  const { value, unit, scaled } = scaleBytes(bytes, 1000);
  return `${scaled ? Number(value.toPrecision(3)) : value}${unit}`;
}

/** docker's units.BytesSize, for memory: binary units, four significant digits ("336KiB", "1.953GiB"). */
export function binarySize(bytes: number): string {
  const { value, unit } = scaleBytes(bytes, 1024);
  return `${Number(value.toPrecision(4))}${unit}`;
}

/** Docker's "About a minute ago", "3 hours ago". */
export function humanAge(from: Date | string | number, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - new Date(from).getTime()) / 1000));
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'} ago`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute ago';
  if (m < 60) return `${m} minutes ago`;
  const h = Math.floor(m / 60);
  if (h === 1) return 'About an hour ago';
  if (h < 48) return `${h} hours ago`;
  const d = Math.floor(h / 24);
  if (d < 14) return `${d} days ago`;
  if (d < 60) return `${Math.floor(d / 7)} weeks ago`;
  if (d < 730) return `${Math.floor(d / 30)} months ago`;
  return `${Math.floor(d / 365)} years ago`;
}

/** A time as Go's time.String prints a UTC one, as docker's CreatedAt fields show it: no fraction when it is zero. */
export function goTime(t: Date): string {
  return t.toISOString().replace('T', ' ').replace(/\.000Z$/, 'Z').replace(/Z$/, ' +0000 UTC');
}
