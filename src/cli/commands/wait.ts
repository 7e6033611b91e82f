import { eachContainer } from '../container-each.ts';

export const command = eachContainer({
  name: 'wait',
  usage: 'berth wait CONTAINER [CONTAINER...]',
  summary: 'Block until one or more containers stop, then print their exit codes',
  specs: {},
  call: (env, id) => env.client().call<{ exitCode: number }>('POST', `/containers/${id}/wait`),
  print: (env, _id, r) => env.stdout.write(`${(r as { exitCode: number }).exitCode}\n`),
});
