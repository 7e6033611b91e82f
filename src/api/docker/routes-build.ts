import type http from 'node:http';
import { berthError, kindOf } from '../../core/errors.ts';
import type { Builder, BuildEvent, BuildRequest } from '../../build/builder.ts';
import { writeStreamed } from '../http/write.ts';
import { flag, ok, type DockerRouter } from './server.ts';

/**
 * `POST /build`, docker's legacy builder protocol (what the docker CLI uses
 * without buildx, and docker-py's `images.build` and compose's `build:`):
 * the body is the context tar; the query carries `t` (several),
 * `dockerfile`, `buildargs` and `labels` (JSON objects), `target`,
 * `nocache`, `pull`, `q`, `platform`, `cachefrom`, `networkmode`; `rm`,
 * `forcerm` and the resource limits are accepted and have no effect.
 * The answer is docker's JSON message stream: `{"stream": "Step 1/3 :
 * FROM busybox\n"}`, the steps' output, `{"aux": {"ID": "sha256:..."}}`,
 * then "Successfully built" / "Successfully tagged"; a failure is a last
 * message with `errorDetail` (its `code` the failing RUN's exit code, which
 * the docker CLI exits with). `POST /build/prune` empties the build cache.
 */
export function registerBuildRoutes(router: DockerRouter, builder: Builder): void {
  router.add('POST', '/build', async (req) => {
    const q = req.query;
    if (q.get('version') === '2') throw berthError('InvalidArgument', 'BuildKit sessions (version=2) are not supported by berth: use the legacy builder protocol (version=1)');
    if (q.get('remote')) throw berthError('InvalidArgument', 'remote build contexts are not supported by berth: send the context as the request body');
    const request: BuildRequest = {
      tags: q.getAll('t').filter(Boolean),
      dockerfile: q.get('dockerfile') || undefined,
      buildArgs: jsonMap(q.get('buildargs'), 'buildargs'),
      labels: jsonMap(q.get('labels'), 'labels'),
      target: q.get('target') || undefined,
      noCache: flag(q.get('nocache')),
      pull: flag(q.get('pull')),
      platform: q.get('platform') || undefined,
      cacheFrom: jsonList(q.get('cachefrom'), 'cachefrom'),
      network: q.get('networkmode') || undefined,
    };
    const quiet = flag(q.get('q'));
    let res: http.ServerResponse | undefined;
    let pending = Promise.resolve();
    const send = (msg: unknown) => {
      res ??= req.stream('application/json');
      const out = res;
      pending = pending.then(() => writeStreamed(out, JSON.stringify(msg) + '\r\n')).catch(() => {});
    };
    const text = (s: string) => {
      if (!quiet) send({ stream: s });
    };
    const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);
    const containers = new Map<number, string>();
    const onEvent = (ev: BuildEvent) => {
      switch (ev.kind) {
        case 'step':
          text(`Step ${ev.step}/${ev.total} : ${ev.text}\n`);
          break;
        case 'cached':
          text(' ---> Using cache\n');
          break;
        case 'container':
          containers.set(ev.step, ev.id);
          text(` ---> Running in ${short(ev.id)}\n`);
          break;
        case 'log':
          text(ev.data);
          break;
        case 'done': {
          const c = containers.get(ev.step);
          if (c) text(` ---> Removed intermediate container ${short(c)}\n`);
          if (ev.id) text(` ---> ${short(ev.id)}\n`);
          break;
        }
        case 'warning':
          text(`[Warning] ${ev.message}\n`);
          break;
        case 'result':
          send({ aux: { ID: ev.id } });
          // As dockerd: quiet, the stream is the image ID alone, which the CLI prints.
          if (quiet) send({ stream: `${ev.id}\n` });
          text(`Successfully built ${short(ev.id)}\n`);
          for (const t of ev.tags) text(`Successfully tagged ${/:[^/]+$/.test(t) ? t : `${t}:latest`}\n`);
          break;
        default:
          break;
      }
    };
    try {
      await builder.build(req.ctx, { request, context: req.raw, onEvent });
      await pending;
    } catch (err) {
      await pending;
      // An error before anything was sent is an error answer, which the CLI prints as dockerd's. The
      // context is read before any step: a loss of data then is the client's upload that is not a tar.
      if (!res && kindOf(err) === 'DataLoss') throw berthError('InvalidArgument', `the build context is not a valid archive: ${(err as Error).message}`, err);
      if (!res) throw err;
      const message = err instanceof Error ? err.message : String(err);
      const code = (err as { exitCode?: number }).exitCode;
      await writeStreamed(res, JSON.stringify({ errorDetail: { message, ...(code ? { code } : {}) }, error: message }) + '\r\n').catch(() => {});
    }
    (res ?? req.stream('application/json')).end();
    return undefined;
  });

  router.add('POST', '/build/prune', async (req) => {
    const r = await builder.prune(req.ctx);
    return ok({ CachesDeleted: [], SpaceReclaimed: r.bytes });
  });
}

function jsonList(text: string | null, what: string): string[] {
  if (!text) return [];
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw berthError('InvalidArgument', `${what}: not JSON: ${text.slice(0, 100)}`);
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw berthError('InvalidArgument', `${what}: want a JSON array of strings`);
  return v as string[];
}

function jsonMap(text: string | null, what: string): Record<string, string> {
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw berthError('InvalidArgument', `${what}: not JSON: ${text.slice(0, 100)}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw berthError('InvalidArgument', `${what}: want a JSON object of strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    // docker sends `null` for `--build-arg NAME` unset in the client's environment: the arg stays unset.
    if (x === null) continue;
    if (typeof x !== 'string') throw berthError('InvalidArgument', `${what}: "${k}" must be a string`);
    out[k] = x;
  }
  return out;
}
