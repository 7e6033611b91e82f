import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPrinter } from './build-progress.ts';

function sink(columns = 60) {
  let text = '';
  return { out: { columns, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream, text: () => text };
}

/** What a terminal shows after the writes: the block's cursor-up and clear-below applied. */
function screen(raw: string): string[] {
  const lines: string[] = [];
  let cur = '';
  for (let i = 0; i < raw.length; i++) {
    const m = /^\x1b\[(\d+)A\x1b\[J/.exec(raw.slice(i));
    if (m) {
      lines.splice(lines.length - Number(m[1]));
      i += m[0].length - 1;
    } else if (raw[i] === '\n') {
      lines.push(cur);
      cur = '';
    } else cur += raw[i];
  }
  return lines;
}

const step = (n: number, text: string) => ({ kind: 'step' as const, step: n, total: 3, stage: 'stage-0', index: n, count: 3, text });

test('plain progress reads as BuildKit plain', () => {
  const s = sink();
  const p = buildPrinter(s.out, { mode: 'plain', quiet: false });
  p.onEvent(step(1, 'FROM busybox'));
  p.onEvent({ kind: 'done', step: 1, ms: 10 });
  p.onEvent(step(2, 'RUN echo hi'));
  p.onEvent({ kind: 'log', step: 2, data: 'hi\npart' });
  p.onEvent({ kind: 'done', step: 2, ms: 1234 });
  p.onEvent(step(3, 'COPY a /a'));
  p.onEvent({ kind: 'cached', step: 3, id: 'sha256:x' });
  p.onEvent({ kind: 'result', id: 'sha256:abc', tags: ['app:1'] });
  p.finish();
  assert.match(s.text(), /^#1 \[stage-0 1\/3\] FROM busybox\n#1 DONE 0\.0s\n#2 \[stage-0 2\/3\] RUN echo hi\n#2 \d\.\d{3} hi\n#2 \d\.\d{3} part\n#2 DONE 1\.2s\n#3 \[stage-0 3\/3\] COPY a \/a\n#3 CACHED\n#4 exporting to image\n#4 writing image sha256:abc\n#4 naming to app:1\n#4 DONE\n$/);
});

test('tty progress: a live block of running steps, finished ones collapsed above it', () => {
  const s = sink();
  const p = buildPrinter(s.out, { mode: 'tty', quiet: false });
  p.onEvent(step(1, 'FROM busybox'));
  p.onEvent({ kind: 'done', step: 1, ms: 10 });
  p.onEvent(step(2, 'RUN make all'));
  p.onEvent({ kind: 'log', step: 2, data: 'compiling \x1b[31mred\x1b[0m\n' });
  p.onEvent(step(3, 'RUN ' + 'x'.repeat(100)));
  // A live block shows both running steps and the latest output line of the first.
  p.onEvent({ kind: 'warning', message: 'note' });
  let shown = screen(s.text());
  assert.deepEqual(shown.slice(0, 2), ['=> [stage-0 1/3] FROM busybox  0.0s', 'WARNING: note']);
  assert.match(shown[2], /^\[\+\] Building \d+\.\ds \(1\/3\)$/);
  assert.match(shown[3], /^ => \[stage-0 2\/3\] RUN make all {2}\d+\.\ds$/);
  assert.equal(shown[4], ' => => # compiling  [31mred [0m');
  assert.ok(shown[5].length <= 59 && /…  \d+\.\ds$/.test(shown[5]), 'a long title is cut to the terminal, its time kept');
  p.onEvent({ kind: 'done', step: 2, ms: 2000 });
  p.onEvent({ kind: 'cached', step: 3, id: 'sha256:y' });
  p.onEvent({ kind: 'result', id: 'sha256:abc', tags: [] });
  p.finish();
  shown = screen(s.text());
  assert.deepEqual(shown.slice(0, 6), ['=> [stage-0 1/3] FROM busybox  0.0s', 'WARNING: note', '=> [stage-0 2/3] RUN make all  2.0s', `=> CACHED ${`[stage-0 3/3] RUN ${'x'.repeat(100)}`.slice(0, 48)}…`, '=> exporting to image', '=> => writing image sha256:abc']);
  assert.match(shown[6], /^\[\+\] Building \d+\.\ds \(3\/3\) FINISHED$/);
  assert.equal(shown.length, 7, 'the live block is gone');
});

test('a failed step prints its whole output; quiet prints nothing before', () => {
  const s = sink();
  const p = buildPrinter(s.out, { mode: 'plain', quiet: true });
  p.onEvent(step(1, 'RUN make'));
  p.onEvent({ kind: 'log', step: 1, data: 'one\ntwo' });
  assert.equal(s.text(), '');
  p.failed();
  assert.equal(s.text(), '=> ERROR [stage-0 1/3] RUN make\none\ntwo\n');
});
