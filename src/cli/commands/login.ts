import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { readLine, readSecret } from '../prompt.ts';

const specs = {
  username: { type: 'string', short: 'u', doc: 'Username' },
  password: { type: 'string', short: 'p', doc: 'Password' },
  'password-stdin': { type: 'bool', doc: 'Take the password from stdin' },
} as const;

export const command: Command = {
  usage: 'berth login [OPTIONS] [SERVER]',
  summary: 'Log in to a registry (default docker.io); credentials go to <root>/auth.json',
  flags: specs,
  local: true,
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length > 1) {
      env.stderr.write(`"berth login" requires at most 1 argument.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    let username = flags.username as string | undefined;
    let password = flags.password as string | undefined;
    if (flags['password-stdin']) {
      if (password) {
        env.stderr.write('--password and --password-stdin are mutually exclusive\n');
        return 125;
      }
      if (!username) {
        env.stderr.write('Must provide --username with --password-stdin\n');
        return 125;
      }
      const chunks: Buffer[] = [];
      for await (const c of env.stdin) chunks.push(c as Buffer);
      password = Buffer.concat(chunks).toString('utf8').replace(/[\r\n]+$/, '');
    } else if (password) {
      env.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    if (!username) {
      env.stdout.write('Username: ');
      username = (await readLine(env)).trim();
    }
    if (!password) {
      env.stdout.write('Password: ');
      password = await readSecret(env);
      env.stdout.write('\n');
    }
    if (!username || !password) {
      env.stderr.write('Error: username and password are required\n');
      return 1;
    }
    const server = args[0] ?? 'docker.io';
    return daemonCall(env, async () => {
      await env.client().call('POST', '/auth/login', { body: { serveraddress: server, username, password } });
      env.stdout.write('Login Succeeded\n');
      return 0;
    });
  },
};
