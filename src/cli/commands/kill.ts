import { eachContainer } from '../container-each.ts';

export const command = eachContainer({
  name: 'kill',
  usage: 'berth kill [OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Kill one or more running containers',
  specs: { signal: { type: 'string', short: 's', default: 'KILL', doc: 'Signal to send to the container' } },
  call: (env, id, f) => env.client().call('POST', `/containers/${id}/kill`, { query: { signal: f.signal as string } }),
});
