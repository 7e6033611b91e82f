import type { BuildEvent } from '../core/build.ts';

/**
 * Build progress as BuildKit's printers read. `plain`: a line per event,
 * `#N [stage i/n] TEXT`, the step's output as `#N 0.123 line`, then `#N
 * CACHED` or `#N DONE 1.2s`. `tty`: a finished step collapses to one line
 * (`=> [stage i/n] TEXT  1.2s`, `=> CACHED ...`), a running one shows its
 * latest output line below, rewritten in place. Quiet prints nothing until
 * a step fails, then that step's output. A failed step's output is always
 * printed whole (up to its last 200 lines) so the error has its context.
 */
export interface BuildPrinter {
  onEvent(ev: BuildEvent): void;
  finish(): void;
  failed(): void;
}

interface StepView {
  title: string;
  started: number;
  lines: string[];
  partial: string;
  done: boolean;
}

export function buildPrinter(out: NodeJS.WritableStream, opts: { mode: 'plain' | 'tty'; quiet: boolean }): BuildPrinter {
  const steps = new Map<number, StepView>();
  let status = false;
  let last = 0;
  const clearStatus = () => {
    if (status) out.write('\r\x1b[K');
    status = false;
  };
  const write = (s: string) => {
    if (opts.quiet) return;
    if (opts.mode === 'tty') clearStatus();
    out.write(s);
  };
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  const addOutput = (v: StepView, data: string) => {
    const text = v.partial + data;
    const parts = text.split('\n');
    v.partial = parts.pop() ?? '';
    v.lines.push(...parts);
    if (v.lines.length > 200) v.lines.splice(0, v.lines.length - 200);
    return parts;
  };
  return {
    onEvent(ev) {
      switch (ev.kind) {
        case 'step': {
          const title = `[${ev.stage} ${ev.index}/${ev.count}] ${ev.text}`;
          steps.set(ev.step, { title, started: Date.now(), lines: [], partial: '', done: false });
          last = ev.step;
          if (opts.mode === 'plain') write(`#${ev.step} ${title}\n`);
          break;
        }
        case 'log': {
          const v = steps.get(ev.step);
          if (!v) break;
          const lines = addOutput(v, ev.data);
          if (opts.mode === 'plain') {
            const t = ((Date.now() - v.started) / 1000).toFixed(3);
            for (const l of lines) write(`#${ev.step} ${t} ${l}\n`);
          } else if (!opts.quiet) {
            const shown = (v.partial || v.lines.at(-1) || '').replace(/[\x00-\x1f\x7f]/g, ' ');
            clearStatus();
            const width = ((out as { columns?: number }).columns ?? 80) - 4;
            out.write(` => ${shown.slice(0, Math.max(10, width))}`);
            status = true;
          }
          break;
        }
        case 'cached': {
          const v = steps.get(ev.step);
          if (v) v.done = true;
          write(opts.mode === 'plain' ? `#${ev.step} CACHED\n` : `=> CACHED ${v?.title ?? ''}\n`);
          break;
        }
        case 'done': {
          const v = steps.get(ev.step);
          if (!v || v.done) break;
          v.done = true;
          if (v.partial) {
            v.lines.push(v.partial);
            if (opts.mode === 'plain') write(`#${ev.step} ${((Date.now() - v.started) / 1000).toFixed(3)} ${v.partial}\n`);
            v.partial = '';
          }
          write(opts.mode === 'plain' ? `#${ev.step} DONE ${secs(ev.ms)}\n` : `=> ${v.title}  ${secs(ev.ms)}\n`);
          break;
        }
        case 'pull':
          if (opts.mode === 'plain' && ev.progress.status && !ev.progress.progressDetail) write(`#${ev.step} ${ev.progress.id ? `${ev.progress.id}: ` : ''}${ev.progress.status}\n`);
          break;
        case 'warning':
          write(`WARNING: ${ev.message}\n`);
          break;
        case 'result': {
          const n = last + 1;
          if (opts.mode === 'plain') {
            write(`#${n} exporting to image\n#${n} writing image ${ev.id}\n`);
            for (const t of ev.tags) write(`#${n} naming to ${t}\n`);
            write(`#${n} DONE\n`);
          } else {
            write(`=> exporting to image\n=> => writing image ${ev.id}\n`);
            for (const t of ev.tags) write(`=> => naming to ${t}\n`);
          }
          break;
        }
        default:
          break;
      }
    },
    finish() {
      if (opts.mode === 'tty') clearStatus();
    },
    failed() {
      if (opts.mode === 'tty') clearStatus();
      // The step that failed is the one still running; its output is what explains the failure.
      for (const [n, v] of steps) {
        if (v.done) continue;
        if (v.partial) v.lines.push(v.partial);
        if (opts.mode === 'tty' || opts.quiet) {
          out.write(`=> ERROR ${v.title}\n`);
          for (const l of v.lines) out.write(`${l}\n`);
        } else out.write(`#${n} ERROR\n`);
      }
    },
  };
}
