import type { Command } from '../command.ts';
import { daemonCall } from '../errors.ts';
import { parseFlags } from '../flags.ts';

const specs = {
  author: { type: 'string', short: 'a', doc: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
  change: { type: 'list', short: 'c', doc: 'Apply Dockerfile instruction to the created image' },
  message: { type: 'string', short: 'm', doc: 'Commit message' },
  pause: { type: 'bool', short: 'p', default: true, doc: 'Pause container during commit' },
} as const;

/** docker commit: a new image from a container's changes. */
export const command: Command = {
  usage: 'berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  summary: "Create a new image from a container's changes",
  flags: specs,
  args: ['container', 'none'],
  async run(argv, env) {
    const { flags, args } = parseFlags(argv, specs);
    if (args.length < 1 || args.length > 2) {
      env.stderr.write(`"berth commit" requires at least 1 and at most 2 arguments.\nUsage:  ${this.usage}\n`);
      return 125;
    }
    // REPOSITORY[:TAG], the tag after the last colon that is not part of a registry's host:port.
    const ref = args[1];
    const colon = ref ? ref.lastIndexOf(':') : -1;
    const tagged = ref !== undefined && colon > ref.lastIndexOf('/');
    const repo = ref === undefined ? undefined : tagged ? ref.slice(0, colon) : ref;
    const tag = ref !== undefined && tagged ? ref.slice(colon + 1) : undefined;
    return daemonCall(env, async () => {
      const r = await env.client().call<{ Id: string }>('POST', '/commit', {
        query: {
          container: args[0],
          repo,
          tag,
          author: flags.author as string | undefined,
          comment: flags.message as string | undefined,
          pause: flags.pause === false ? '0' : '1',
          changes: flags.change as string[],
        },
      });
      env.stdout.write(`${r.Id}\n`);
      return 0;
    });
  },
};
