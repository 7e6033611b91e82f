import { eachContainer } from '../container-each.ts';

export const command = eachContainer({
  name: 'pause',
  usage: 'berth pause CONTAINER [CONTAINER...]',
  summary: 'Pause all processes within one or more containers',
  specs: {},
  call: (env, id) => env.client().call('POST', `/containers/${id}/pause`),
});
