import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { runProcess, type CliResult } from './daemon.ts';
import { startEngine, type Engine } from './engine.ts';
import { runtimeSkipReason } from './tasks.ts';

/**
 * The real docker CLI against a berth engine's Docker API socket.
 * DOCKER_CONFIG points at a temp dir, so the host's docker config is never
 * read or written. `stop()` removes every container, then the engine.
 */
export const dockerBin = '/usr/local/bin/docker';
export const dockerSkip = runtimeSkipReason() ?? (existsSync(dockerBin) ? undefined : 'needs the docker CLI at /usr/local/bin/docker');

export interface DockerEngine {
  e: Engine;
  sock: string;
  /** The environment the docker CLI runs with. */
  env: Record<string, string>;
  docker(args: string[], opts?: { input?: string }): Promise<CliResult>;
  /** docker ARGS, asserting exit 0; its stdout. */
  ok(args: string[], opts?: { input?: string }): Promise<string>;
  /**
   * docker ARGS in a real pseudo-terminal (util-linux `script`, 30 rows by
   * 100 columns). Each step waits until the terminal's output so far
   * matches `after`, then types `send`; the result is the exit code and
   * everything the terminal showed.
   */
  terminal(args: string[], steps: Array<{ after?: RegExp; send: string }>): Promise<{ code: number; output: string }>;
  /** A raw request on the socket, for what the CLI does not show (status codes, headers). */
  request(method: string, p: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>;
  stop(): Promise<void>;
}

export async function startDockerEngine(): Promise<DockerEngine> {
  const e = await startEngine();
  const sock = path.join(e.d.state, 'docker.sock');
  const dockerConfig = await mkdtemp(path.join(os.tmpdir(), 'berth-docker-config-'));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dockerConfig, DOCKER_CONFIG: dockerConfig, DOCKER_HOST: `unix://${sock}` };
  const docker = (args: string[], opts: { input?: string } = {}) => runProcess(dockerBin, args, { env, timeoutMs: 60_000, input: opts.input });
  return {
    e,
    sock,
    env,
    docker,
    async ok(args, opts) {
      const r = await docker(args, opts);
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
    terminal: (args, steps) => inTerminal([dockerBin, ...args].join(' '), env, steps),
    request: (method, p) =>
      new Promise((resolve, reject) => {
        const req = http.request({ socketPath: sock, method, path: p }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end();
      }),
    async stop() {
      const ids = (await docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await docker(['rm', '-f', ...ids]);
      await e.stop();
      await rm(dockerConfig, { recursive: true, force: true });
    },
  };
}

function inTerminal(command: string, env: Record<string, string>, steps: Array<{ after?: RegExp; send: string }>): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('script', ['-q', '-e', '-c', `stty rows 30 cols 100; exec ${command}`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
    let output = '';
    let next = 0;
    const advance = () => {
      while (next < steps.length && (!steps[next].after || steps[next].after!.test(output))) p.stdin.write(steps[next++].send);
    };
    p.stdout.on('data', (d: Buffer) => {
      output += d.toString('utf8');
      advance();
    });
    p.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    p.stdin.on('error', () => {});
    p.on('error', reject);
    // stdin stays open to the end: at its end, script would hang up the terminal.
    p.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output }));
    advance();
  });
}
