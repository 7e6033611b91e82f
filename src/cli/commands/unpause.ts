import { eachContainer } from '../container-each.ts';

export const command = eachContainer({
  name: 'unpause',
  usage: 'berth unpause CONTAINER [CONTAINER...]',
  summary: 'Unpause all processes within one or more containers',
  specs: {},
  call: (env, id) => env.client().call('POST', `/containers/${id}/unpause`),
});
