import { mallocTrim } from './sys.ts';

/**
 * Hands the memory of a burst of heavy work (pulls, loads, imports, commits)
 * back to the kernel once the burst is over. Such work leaves tens of MiB of
 * stream chunks and decompression buffers in ArrayBuffers that are garbage
 * but not yet collected: V8 sees little heap growth and may not collect them
 * for minutes, and until it does glibc cannot return their pages either (the
 * big image's pull left berthd at 96 MiB RSS for good, 77 after this).
 *
 * So: once nothing heavy has finished for `QUIET_MS`, one full GC (when
 * berthd runs with `--expose-gc`, as bin/berthd starts it: a pause of
 * 10-100 ms, by heap size and machine load, once per burst), then
 * malloc_trim, which also returns free pages from the middle of glibc's
 * heaps, not only from their top, and which runs again `SWEEP_MS` later.
 */
const QUIET_MS = 1000;
const SWEEP_MS = 1000;

let timer: NodeJS.Timeout | undefined;

export function releaseMemorySoon(): void {
  clearTimeout(timer);
  timer = setTimeout(releaseMemoryNow, QUIET_MS);
  // Shutting down never waits for it.
  timer.unref();
}

export function releaseMemoryNow(): void {
  clearTimeout(timer);
  timer = undefined;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  mallocTrim();
  // V8 frees the dead ArrayBuffers' memory on a background thread after the
  // GC returns: in about one pull in three the first trim came before it
  // (glibc's main arena then held 45 MiB with 6.6 in use), so once that
  // thread has had time to finish, the trim runs again.
  if (gc) setTimeout(mallocTrim, SWEEP_MS).unref();
}

