import type { BuildEvent } from '../core/build.ts';

/**
 * Build progress as BuildKit's printers read. `plain`: a line per event,
 * `#N [stage i/n] TEXT`, the step's output as `#N 0.123 line`, then `#N
 * CACHED` or `#N DONE 1.2s`. `tty`: a live block at the bottom, redrawn in
 * place ten times a second: `[+] Building 3.2s (4/9)`, then each running
 * step with its time and its latest output line; a step that finishes
 * collapses to one line above the block (`=> [stage i/n] TEXT  1.2s`, `=>
 * CACHED ...`). Quiet prints nothing until a step fails. A failed step's
 * output is printed whole (up to its last 200 lines) after the error's
 * step line, so the error has its context.
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

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
// Terminal control characters in a step's output would move the cursor under the block.
const printable = (s: string) => s.replace(/[\x00-\x1f\x7f]/g, ' ');

export function buildPrinter(out: NodeJS.WritableStream, opts: { mode: 'plain' | 'tty'; quiet: boolean }): BuildPrinter {
  const steps = new Map<number, StepView>();
  const started = Date.now();
  let last = 0;
  let total = 0;
  let finished = 0;
  const tty = opts.mode === 'tty' && !opts.quiet;
  let drawn = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  const width = () => Math.max(20, ((out as { columns?: number }).columns ?? 80) - 1);
  const fit = (s: string) => {
    const p = printable(s);
    return p.length > width() ? p.slice(0, width() - 1) + '…' : p;
  };
  // A step's line within the terminal's width: the title is cut, its time kept.
  const stepLine = (prefix: string, title: string, suffix = '') => {
    const room = width() - prefix.length - suffix.length;
    const t = printable(title);
    return prefix + (t.length > room ? t.slice(0, Math.max(0, room - 1)) + '…' : t) + suffix;
  };
  // The block's lines end with a newline, so the cursor sits below it: up that many lines, then clear to the end.
  const clearBlock = () => {
    if (drawn) out.write(`\x1b[${drawn}A\x1b[J`);
    drawn = 0;
  };
  const drawBlock = () => {
    const lines = [`[+] Building ${secs(Date.now() - started)} (${finished}/${total})`];
    for (const v of steps.values()) {
      if (v.done) continue;
      lines.push(stepLine(' => ', v.title, `  ${secs(Date.now() - v.started)}`));
      const tail = v.partial || v.lines.at(-1);
      if (tail) lines.push(fit(` => => # ${tail}`));
    }
    out.write(lines.join('\n') + '\n');
    drawn = lines.length;
  };
  const above = (s: string) => {
    if (opts.quiet) return;
    if (!tty) return void out.write(s);
    clearBlock();
    out.write(s);
    drawBlock();
  };
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (tty) clearBlock();
  };
  const addOutput = (v: StepView, data: string) => {
    const text = v.partial + data;
    const parts = text.split('\n');
    v.partial = parts.pop() ?? '';
    v.lines.push(...parts);
    if (v.lines.length > 200) v.lines.splice(0, v.lines.length - 200);
    return parts;
  };
  const end = (v: StepView) => {
    v.done = true;
    finished++;
    if (v.partial) {
      v.lines.push(v.partial);
      v.partial = '';
    }
  };
  return {
    onEvent(ev) {
      switch (ev.kind) {
        case 'step': {
          const title = `[${ev.stage} ${ev.index}/${ev.count}] ${ev.text}`;
          steps.set(ev.step, { title, started: Date.now(), lines: [], partial: '', done: false });
          last = ev.step;
          total = ev.total;
          if (tty) {
            timer ??= setInterval(() => {
              clearBlock();
              drawBlock();
            }, 100);
            timer.unref?.();
          }
          if (opts.mode === 'plain') above(`#${ev.step} ${title}\n`);
          break;
        }
        case 'log': {
          const v = steps.get(ev.step);
          if (!v) break;
          const t = ((Date.now() - v.started) / 1000).toFixed(3);
          const lines = addOutput(v, ev.data);
          if (opts.mode === 'plain') for (const l of lines) above(`#${ev.step} ${t} ${l}\n`);
          break;
        }
        case 'cached': {
          const v = steps.get(ev.step);
          if (!v || v.done) break;
          end(v);
          above(opts.mode === 'plain' ? `#${ev.step} CACHED\n` : `${stepLine('=> CACHED ', v.title)}\n`);
          break;
        }
        case 'done': {
          const v = steps.get(ev.step);
          if (!v || v.done) break;
          const tail = v.partial;
          end(v);
          if (opts.mode === 'plain') {
            if (tail) above(`#${ev.step} ${((Date.now() - v.started) / 1000).toFixed(3)} ${tail}\n`);
            above(`#${ev.step} DONE ${secs(ev.ms)}\n`);
          } else {
            above(`${stepLine('=> ', v.title, `  ${secs(ev.ms)}`)}\n`);
          }
          break;
        }
        case 'pull':
          if (opts.mode === 'plain' && ev.progress.status && !ev.progress.progressDetail) above(`#${ev.step} ${ev.progress.id ? `${ev.progress.id}: ` : ''}${ev.progress.status}\n`);
          break;
        case 'warning':
          above(`WARNING: ${ev.message}\n`);
          break;
        case 'result': {
          const n = last + 1;
          if (opts.mode === 'plain') {
            above(`#${n} exporting to image\n#${n} writing image ${ev.id}\n`);
            for (const t of ev.tags) above(`#${n} naming to ${t}\n`);
            above(`#${n} DONE\n`);
          } else {
            above(`=> exporting to image\n=> => writing image ${ev.id}\n`);
            for (const t of ev.tags) above(`=> => naming to ${t}\n`);
          }
          break;
        }
        default:
          break;
      }
    },
    finish() {
      stop();
      if (tty) out.write(`[+] Building ${secs(Date.now() - started)} (${finished}/${total}) FINISHED\n`);
    },
    failed() {
      stop();
      // The step that failed is among those still running; its output is what explains the failure.
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
