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

/** Read a password: on a terminal without echo, otherwise one line. */
export async function readSecret(env: CommandEnv): Promise<string> {
  const stdin = env.stdin;
  if (!stdin.isTTY) return readLine(env);
  stdin.setRawMode(true);
  try {
    return await new Promise((resolve, reject) => {
      let buf = '';
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done(buf);
          if (ch === '\u0003') return fail();
          if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
          else buf += ch;
        }
      };
      const cleanup = () => {
        stdin.off('data', onData);
        stdin.pause();
      };
      const done = (v: string) => {
        cleanup();
        resolve(v);
      };
      const fail = () => {
        cleanup();
        reject(Object.assign(new Error('interrupted'), { exit: 130 }));
      };
      stdin.on('data', onData);
      stdin.resume();
    });
  } finally {
    stdin.setRawMode(false);
  }
}
