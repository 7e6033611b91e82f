import { eachContainer } from '../container-each.ts';

export const command = eachContainer({
  name: 'restart',
  usage: 'berth restart [OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Restart one or more containers',
  specs: { time: { type: 'number', short: 't', doc: 'Seconds to wait before killing the container' } },
  call: (env, id, f) => env.client().call('POST', `/containers/${id}/restart`, { query: { t: f.time as number | undefined } }),
});
