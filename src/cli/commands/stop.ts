import { eachContainer } from '../container-each.ts';

export const command = eachContainer({
  name: 'stop',
  usage: 'berth stop [OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Stop one or more running containers',
  specs: {
    time: { type: 'number', short: 't', doc: 'Seconds to wait before killing the container' },
    signal: { type: 'string', short: 's', doc: 'Signal to send to the container' },
  },
  call: (env, id, f) => env.client().call('POST', `/containers/${id}/stop`, { query: { t: f.time as number | undefined, signal: f.signal as string | undefined } }),
});
