import { existsSync } from 'node:fs';
import path from 'node:path';
import { readJournal, releaseAll } from './lib/cleanup.ts';

/**
 * Undoes whatever a bench run left behind when the harness itself could not
 * (killed, crashed): reads the run's journal and releases every entry.
 * bench/run.sh calls it on exit; every step is a no-op when already done.
 */
const work = process.argv[2];
if (work && path.basename(work).startsWith('berth-bench-') && existsSync(path.join(work, 'journal.jsonl'))) {
  await releaseAll(readJournal(path.join(work, 'journal.jsonl')), (s) => process.stderr.write(`[bench] ${s}\n`));
}
