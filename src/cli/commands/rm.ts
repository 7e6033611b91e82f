import { eachContainer } from '../container-each.ts';

export const command = eachContainer({
  name: 'rm',
  usage: 'berth rm [OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Remove one or more containers',
  specs: {
    force: { type: 'bool', short: 'f', doc: 'Force the removal of a running container (uses SIGKILL)' },
    volumes: { type: 'bool', short: 'v', doc: 'Remove anonymous volumes associated with the container' },
  },
  call: (env, id, f) => env.client().call('DELETE', `/containers/${id}`, { query: { force: !!f.force, v: !!f.volumes } }),
});
