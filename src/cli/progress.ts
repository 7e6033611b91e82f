import type { ProgressEvent } from '../core/images.ts';
import { humanSize } from './output.ts';

/**
 * Renders pull/push progress as docker does: on a terminal one line per
 * layer, redrawn in place with a bar; otherwise a plain line whenever a
 * layer's status changes (no byte counts, so logs stay readable).
 */
export function progressPrinter(out: NodeJS.WriteStream, opts: { quiet?: boolean } = {}): { onEvent(ev: ProgressEvent): void; finish(): void } {
  const tty = !!out.isTTY;
  const order: string[] = [];
  const lines = new Map<string, string>();
  const last = new Map<string, string>();
  const width = () => Math.max(40, (out.columns || 80) - 1);
  const render = (id: string, ev: ProgressEvent): string => {
    const d = ev.progressDetail;
    let s = `${id}: ${ev.status}`;
    if (tty && d && d.total && d.current !== undefined && (ev.status === 'Downloading' || ev.status === 'Extracting' || ev.status === 'Pushing')) {
      const n = 50;
      const done = Math.min(n, Math.floor((d.current / d.total) * n));
      const bar = '='.repeat(Math.max(0, done - 1)) + (done > 0 ? '>' : '') + ' '.repeat(n - done);
      s += ` [${bar}]  ${humanSize(d.current)}/${humanSize(d.total)}`;
    }
    return s.slice(0, width());
  };
  return {
    onEvent(ev) {
      if (opts.quiet) return;
      if (!ev.id || (!tty && !lines.has(ev.id) && ev.status.includes('Pulling from'))) {
        if (ev.id && ev.status.includes('Pulling from')) out.write(`${ev.id}: ${ev.status}\n`);
        else if (!ev.id) out.write(`${ev.status}\n`);
        return;
      }
      const id = ev.id;
      if (!tty) {
        if (last.get(id) !== ev.status) {
          last.set(id, ev.status);
          out.write(`${id}: ${ev.status}\n`);
        }
        return;
      }
      const text = render(id, ev);
      if (!lines.has(id)) {
        order.push(id);
        lines.set(id, text);
        out.write(`${text}\n`);
        return;
      }
      lines.set(id, text);
      const up = order.length - order.indexOf(id);
      out.write(`\x1b[${up}A\x1b[2K\r${text}\x1b[${up}B\r`);
    },
    finish() {},
  };
}
