import type { CommandEnv } from './command.ts';

/** Read one line from stdin (a terminal or a pipe). */
export async function readLine(env: CommandEnv): Promise<string> {
  const stdin = env.stdin;
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.slice(0, nl));
    };
    const done = (s: string) => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      resolve(s.replace(/\r$/, ''));
    };
    const onEnd = () => done(buf);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

/** docker's [y/N] prompt: anything but y/yes is no. */
export async function confirm(env: CommandEnv, question: string): Promise<boolean> {
  env.stdout.write(question);
  const answer = (await readLine(env)).trim().toLowerCase();
  return answer === 'y' || answer === 'yes';
}
