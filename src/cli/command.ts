import type { ApiClient } from '../api/native/client.ts';
import type { ArgKind, FlagSpec } from './flags.ts';

/**
 * A CLI command module exports `command: Command`. cli.ts imports a module
 * only when its command runs, so `berth images` never loads the code of
 * `berth run`.
 *
 * Commands reach the user only through CommandEnv, never through `process`:
 * the same command runs either in its own Node process (main.ts) or inside
 * berthd for the thin native client (daemon/cli-host.ts), where `process` is
 * the daemon's.
 */
export interface CommandEnv {
  client(): ApiClient;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  /** The user's environment variables. */
  env: NodeJS.ProcessEnv;
  /** The user's working directory: relative paths in arguments are resolved against it. */
  cwd: string;
  /** Whether the user's stdin is a terminal, without building the stream. */
  stdinIsTTY(): boolean;
  /** Handle a signal sent to the berth command; returns the function that stops handling it. */
  onSignal(signal: NodeJS.Signals, handler: () => void): () => void;
  /** Aborted when a hosted command's client goes away: long reads stop with it. */
  readonly signal?: AbortSignal;
  /**
   * Set when berthd hosts the command (daemon/cli-host.ts): the user is root
   * in berthd's mount namespace, so a path the command names is the same
   * file for berthd, which may read it in place.
   */
  readonly inDaemon?: boolean;
}

/**
 * What a command resolves to when, hosted by berthd, it finds it must run
 * in the user's own process after all (as `local` commands always do);
 * it has written nothing yet.
 */
export const RUN_LOCALLY = 'local';

/**
 * A command's own definition is the one source of its help (`berth CMD
 * --help`, the one-line summary in `berth --help`) and of its shell
 * completion (`berth completion`): what it declares here shows up there.
 */
export interface Command {
  usage: string;
  summary: string;
  /** The flags it parses, with their descriptions and defaults. */
  flags?: Record<string, FlagSpec>;
  /**
   * What its positional arguments name, for completion: argument i is
   * `args[i]`, the last kind repeats (`none` ends completion of names).
   */
  args?: readonly ArgKind[];
  /**
   * The command reads or writes the user's files by path, or prompts on the
   * terminal: it always runs in the user's own process, with the user's
   * rights and umask, and is never hosted by berthd.
   */
  local?: boolean;
  /** Resolves to the process exit code (or, hosted, RUN_LOCALLY). */
  run(argv: string[], env: CommandEnv): Promise<number | typeof RUN_LOCALLY>;
}
