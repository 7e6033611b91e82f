import type { ConfigSection } from '../../core/config.ts';

/** The `[docker]` section: the Docker Engine API socket. Its mode and group are the daemon's `socket_mode` and `socket_group`. */
export const dockerSection: ConfigSection = {
  name: 'docker',
  doc: 'the Docker Engine API front door, for the docker CLI and Docker SDKs',
  fields: {
    enabled: { type: 'boolean', default: true, doc: 'serve the Docker Engine API; false leaves only the native API (and the CRI) listening' },
    address: { type: 'string', default: '', doc: 'Docker API socket; empty means <state>/docker.sock. Point DOCKER_HOST=unix://PATH at it' },
  },
};
