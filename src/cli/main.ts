import { isatty } from 'node:tty';
import { runCli, type CliIo } from './cli.ts';
import { exitOnceFlushed } from './exit.ts';

/**
 * The berth command in its own Node process: the fallback of the native
 * client (native/cli.c), which otherwise hands its command line to berthd,
 * and the path for commands marked `local`.
 */
/** The output streams the command touched: only those can hold writes still queued at exit. */
const touched = new Set<NodeJS.WriteStream>();

const io: CliIo = {
  // Node builds each stdio stream on first touch (a socket for a pipe, ~1.5 ms): a command that
  // prints nothing (run --rm true) or never reads stdin pays for none of them.
  get stdout() {
    touched.add(process.stdout);
    return process.stdout;
  },
  get stderr() {
    touched.add(process.stderr);
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

// Exit as soon as the command is done rather than let Node drain and tear down its environment
// (~3 ms wall, ~5 ms CPU a command), once what it wrote is out.
void runCli(process.argv.slice(2), io).then((code) => exitOnceFlushed(typeof code === 'number' ? code : 125, touched));
