import { setFlagsFromString } from 'node:v8';

/**
 * berthd's V8 settings, in two halves, so that its start keeps Node's code
 * cache.
 *
 * Node compiles its built-in modules (node:http, node:crypto, node:http2
 * and the rest) from a code cache inside its binary, which V8 accepts only
 * when the flags in force hash as Node's build did: any V8 flag off its
 * default, even `--expose-gc`, makes V8 reject it, and every built-in berthd
 * loads is then compiled from source: a bare Node loading a dozen
 * built-ins took 11 ms without flags and 31 with any. In berthd's start,
 * compiling built-ins fell from ~50 to ~13 ms of CPU (its profile), and
 * the time until all three sockets answer by ~10 ms (`sh bench/run.sh
 * startup`, docs/architecture.md, "Memory").
 *
 * - What acts only when the isolate is made (the heap's sizes, the time zone
 *   source of V8's date cache, the `gc` global) is passed by bin/berthd on
 *   the command line, and put back to its default here, first thing, so the
 *   hash is Node's while berthd starts; its effect stays. Each of these flags
 *   has no implications, so its default restores the hash.
 * - What acts all along (no optimising compilers, the size-tuned heap's
 *   policies) is set by `settleV8Flags` once berthd is ready, and holds for
 *   the rest of its life and for every worker made after. Built-ins loaded
 *   from then on (a lazy door's, an applier's) are compiled from source, as
 *   all were before. `--no-opt` and `--no-maglev` change other flags by
 *   implication, which their defaults would not undo: they are not on the
 *   command line.
 *
 * The cost: the code cache's pages of Node's binary that the start reads,
 * ~2.4 MiB more RSS fresh, clean and shared with every Node process on the
 * host (PSS +0.3-0.7 MiB beside containerd alone); berthd's heap is the
 * same.
 *
 * docs/architecture.md ("Runtime and toolchain", "Memory") says why each
 * flag is there.
 */

/** The flags bin/berthd passes, each with the default that puts V8's flag hash back. */
const START_FLAGS: Readonly<Record<string, string>> = {
  '--initial-old-space-size=32': '--initial-old-space-size=0',
  '--optimize-for-size': '--no-optimize-for-size',
  '--expose-gc': '--no-expose-gc',
  '--no-icu-timezone-data': '--icu-timezone-data',
};

const passed = process.execArgv.filter((a) => a in START_FLAGS);
let settled = false;

/**
 * berthd is ready: from now on the start flags bin/berthd passed hold again
 * (for the workers it makes), with the optimising compilers off; nothing for
 * a berthd started without them (tests, tools).
 */
export function settleV8Flags(): void {
  if (settled || !passed.length) return;
  settled = true;
  setFlagsFromString([...passed, '--no-opt', '--no-maglev'].join(' '));
}

// The start flags go back to their defaults before anything else in berthd runs (main.ts imports this module first).
if (passed.length) setFlagsFromString(passed.map((a) => START_FLAGS[a]).join(' '));
