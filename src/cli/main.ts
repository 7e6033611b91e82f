import { isatty } from 'node:tty';
import { runCli, type CliIo } from './cli.ts';

/**
 * The berth command in its own Node process: the fallback of the native
 * client (native/cli.c), which otherwise hands its command line to berthd,
 * and the path for commands marked `local`.
 */
const io: CliIo = {
  // Node builds each stdio stream on first touch (a socket for a pipe, ~1.5 ms): a command that
  // prints nothing (run --rm true) or never reads stdin pays for none of them.
  get stdout() {
    return process.stdout;
  },
  get stderr() {
    return process.stderr;
  },
  get stdin() {
    return process.stdin;
  },
  env: process.env,
  cwd: process.cwd(),
  stdinIsTTY: () => isatty(0),
  onSignal(signal, handler) {
    process.on(signal, handler);
    return () => process.off(signal, handler);
  },
};

// Exit as soon as the command is done rather than let Node drain and tear
// down its environment (~3 ms wall, ~5 ms CPU a command): on Linux writes to
// stdout and stderr are synchronous for files, pipes and terminals, so
// nothing written is lost, and a command resolves only once its work is over.
void runCli(process.argv.slice(2), io).then((code) => process.exit(typeof code === 'number' ? code : 125));
