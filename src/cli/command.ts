import type { ApiClient } from '../api/native/client.ts';

/**
 * A CLI command module exports `command: Command`. main.ts imports a module
 * only when its command runs, so `berth images` never loads the code of
 * `berth run`.
 */
export interface CommandEnv {
  client(): ApiClient;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  usage: string;
  summary: string;
  /** Resolves to the process exit code. */
  run(argv: string[], env: CommandEnv): Promise<number>;
}
