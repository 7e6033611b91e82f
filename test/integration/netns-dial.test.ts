import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNetnsFile, umount2 } from '../../src/core/sys.ts';
import { dialInNetns } from '../../src/network/netns-dial.ts';
import { serveIn } from '../helpers/network.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

/** Children of this process: the helper must not outlive a dial. */
function children(): string[] {
  return readdirSync('/proc/self/task').flatMap((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      return [];
    }
  });
}

describe('dialInNetns (berth-nsconnect)', { skip }, () => {
  let dir: string;
  let netns: string;
  let server: Awaited<ReturnType<typeof serveIn>>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-nsdial-'));
    netns = path.join(dir, 'ns');
    await writeFile(netns, '');
    createNetnsFile(netns);
    server = await serveIn(netns, 8080, 'the pod');
  });

  after(async () => {
    await server?.stop();
    if (netns) umount2(netns);
    await rm(dir, { recursive: true, force: true });
  });

  test('connects to the loopback of the namespace, not the host\'s, and leaves no process or descriptor', async () => {
    const fds = readdirSync('/proc/self/fd').length;
    const before = children().length;
    const sock = await dialInNetns(netns, 8080);
    const got = await new Promise<string>((resolve) => {
      let s = '';
      sock.on('data', (d) => (s += d));
      sock.on('end', () => resolve(s));
    });
    assert.equal(got, 'hello from the pod');
    sock.destroy();
    await new Promise((r) => sock.once('close', r));
    // The helper is reaped once it sees its stdin closed.
    for (let i = 0; children().length > before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(readdirSync('/proc/self/fd').length, fds);
  });

  test('a port nobody listens on is Unavailable, a missing namespace NotFound', async () => {
    await assert.rejects(dialInNetns(netns, 8081), (e: { kind?: string; message: string }) => e.kind === 'Unavailable' && /localhost:8081.*refused/i.test(e.message));
    await assert.rejects(dialInNetns(path.join(dir, 'nope'), 8080), (e: { kind?: string }) => e.kind === 'NotFound');
    await assert.rejects(dialInNetns(netns, 70000), (e: { kind?: string }) => e.kind === 'InvalidArgument');
  });
});
