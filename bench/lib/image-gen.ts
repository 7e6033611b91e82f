import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { tarStream, type TarItem } from './tar.ts';

/**
 * Writes the bench's test images as OCI image layouts (oci-layout,
 * index.json, blobs/sha256) with our own small generator. Bump
 * GENERATOR_VERSION when the content changes so cached layouts are rebuilt.
 *
 * - big: 8 gzip layers, about 400 MB unpacked: busybox-static, a source tree
 *   of thousands of small text files, large random (incompressible) files,
 *   large logs (compressible), thousands of tiny files with hard links, a
 *   mixed layer, a data layer, and an app layer with a whiteout and an
 *   opaque directory.
 * - tiny: busybox-static alone, for the run benchmarks.
 * - pause: berth's pause binary alone, the sandbox image of containerd's CRI.
 */
export const GENERATOR_VERSION = 1;

export interface Layout {
  dir: string;
  tag: string;
  layers: { digest: string; size: number; diffId: string; unpacked: number }[];
}

/** mulberry32: a small seeded PRNG so the text content is reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = prng(42);
const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
const WORDS = Array.from({ length: 4000 }, () => {
  let w = '';
  const n = int(2, 10);
  for (let i = 0; i < n; i++) w += String.fromCharCode(97 + int(0, 25));
  return w;
});

/** Compressible text: words and log-like lines. */
function text(size: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const line =
      rnd() < 0.5
        ? `2026-01-01T00:${String(int(0, 59)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')}Z INFO worker-${int(0, 9)} request id=${int(1e5, 9e5)} path=/api/${WORDS[int(0, 3999)]}/${int(0, 999)} status=200 took=${int(1, 99)}ms\n`
        : Array.from({ length: int(4, 14) }, () => WORDS[int(0, 3999)]).join(' ') + '\n';
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/** Incompressible content, produced in 1 MiB chunks. */
function random(size: number): Pick<TarItem, 'data' | 'size'> {
  return {
    size,
    data: function* () {
      for (let left = size; left > 0; left -= 1 << 20) yield randomBytes(Math.min(left, 1 << 20));
    },
  };
}

const MiB = 1 << 20;

function* base(): Generator<TarItem> {
  for (const d of ['bin', 'dev', 'etc', 'proc', 'root', 'sys', 'var', 'www']) yield { path: d, type: 'dir' };
  yield { path: 'tmp', type: 'dir', mode: 0o1777 };
  yield { path: 'bin/busybox', type: 'file', mode: 0o755, data: readFileSync('/bin/busybox') };
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) yield { path: `bin/${a}`, type: 'symlink', link: 'busybox' };
  yield { path: 'etc/passwd', type: 'file', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n') };
  yield { path: 'etc/group', type: 'file', data: Buffer.from('root:x:0:\nnogroup:x:65534:\n') };
  yield { path: 'www/index.html', type: 'file', data: Buffer.from('<h1>berth bench</h1>\n') };
}

function* sourceTree(): Generator<TarItem> {
  for (let i = 0; i < 7000; i++) {
    yield { path: `src/pkg${String(i % 40).padStart(2, '0')}/mod${Math.floor(i / 40) % 5}/file_${i}.txt`, type: 'file', data: text(int(1024, 12 * 1024)) };
  }
  for (let i = 0; i < 200; i++) yield { path: `src/links/l_${i}`, type: 'symlink', link: `../pkg${String(i % 40).padStart(2, '0')}/mod${Math.floor(i / 40) % 5}/file_${i}.txt` };
}

function* blobs(): Generator<TarItem> {
  for (const [i, mb] of [40, 48, 56].entries()) yield { path: `data/blob-${i}.bin`, type: 'file', ...random(mb * MiB) };
}

function* logs(): Generator<TarItem> {
  for (let i = 0; i < 4; i++) yield { path: `var/log/app-${i}.log`, type: 'file', data: text(12 * MiB) };
}

function* modules(): Generator<TarItem> {
  for (let i = 0; i < 8000; i++) {
    yield { path: `opt/modules/m${String(Math.floor(i / 40)).padStart(3, '0')}/lib/f${i}.js`, type: 'file', data: text(int(64, 2048)) };
  }
  for (let i = 0; i < 100; i++) yield { path: `opt/modules/shared/h${i}.js`, type: 'hardlink', link: `opt/modules/m000/lib/f${i % 40}.js` };
}

function* mixed(): Generator<TarItem> {
  for (let i = 0; i < 24; i++) yield { path: `opt/assets/asset-${i}.bin`, type: 'file', ...random(int(1, 4) * MiB) };
  for (let i = 0; i < 1500; i++) yield { path: `opt/docs/d${String(i % 30).padStart(2, '0')}/doc-${i}.md`, type: 'file', data: text(int(2048, 20 * 1024)) };
}

function* data(): Generator<TarItem> {
  yield { path: 'data/big.bin', type: 'file', ...random(56 * MiB) };
  yield { path: 'data/big.txt', type: 'file', data: text(8 * MiB) };
}

function* app(): Generator<TarItem> {
  for (let i = 0; i < 300; i++) yield { path: `app/lib/part-${i}.txt`, type: 'file', data: text(int(1024, 12 * 1024)) };
  yield { path: 'src/pkg00/mod0/.wh.file_0.txt', type: 'file', data: Buffer.alloc(0) };
  yield { path: 'opt/docs/d00/.wh..wh..opq', type: 'file', data: Buffer.alloc(0) };
  yield { path: 'opt/docs/d00/README.md', type: 'file', data: text(4096) };
}

async function writeLayer(blobDir: string, items: Iterable<TarItem>): Promise<Layout['layers'][number]> {
  const tmp = path.join(blobDir, `.tmp-${randomBytes(6).toString('hex')}`);
  const diff = createHash('sha256');
  const gz = createHash('sha256');
  let unpacked = 0;
  let size = 0;
  await pipeline(
    Readable.from(tarStream(items)),
    new Transform({
      transform(c: Buffer, _e, cb) {
        diff.update(c);
        unpacked += c.length;
        cb(null, c);
      },
    }),
    createGzip({ level: 6 }),
    new Transform({
      transform(c: Buffer, _e, cb) {
        gz.update(c);
        size += c.length;
        cb(null, c);
      },
    }),
    createWriteStream(tmp),
  );
  const digest = `sha256:${gz.digest('hex')}`;
  await rename(tmp, path.join(blobDir, digest.slice(7)));
  return { digest, size, diffId: `sha256:${diff.digest('hex')}`, unpacked };
}

async function writeBlob(blobDir: string, body: string): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  await writeFile(path.join(blobDir, digest.slice(7)), body);
  return { digest, size: Buffer.byteLength(body) };
}

/** berth's own pause binary (static), as the sandbox image of containerd's CRI plugin: both engines then hold a pod with the same program. */
function* pause(): Generator<TarItem> {
  yield { path: 'pause', type: 'file', mode: 0o755, data: readFileSync(path.resolve(import.meta.dirname, '../../native/build/berth-pause')) };
}

const IMAGES = {
  big: [base, sourceTree, blobs, logs, modules, mixed, data, app],
  tiny: [base],
  pause: [pause],
} as const;

const PATH_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
const CONFIGS: Record<keyof typeof IMAGES, object> = {
  big: { Env: PATH_ENV, Cmd: ['sh'], WorkingDir: '/', ExposedPorts: { '80/tcp': {} } },
  tiny: { Env: PATH_ENV, Cmd: ['sh'], WorkingDir: '/', ExposedPorts: { '80/tcp': {} } },
  pause: { Env: PATH_ENV, Entrypoint: ['/pause'], WorkingDir: '/' },
};

/** Returns the cached layout of image `name`, generating it first if needed. */
export async function ensureLayout(cacheDir: string, name: keyof typeof IMAGES, log: (s: string) => void): Promise<Layout> {
  const dir = path.join(cacheDir, `${name}-v${GENERATOR_VERSION}`);
  const meta = path.join(dir, 'bench-layout.json');
  if (existsSync(meta)) return JSON.parse(readFileSync(meta, 'utf8')) as Layout;
  log(`generating the ${name} image layout in ${dir} (once; cached)`);
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  const blobDir = path.join(tmp, 'blobs/sha256');
  await mkdir(blobDir, { recursive: true });
  const layers = [];
  for (const gen of IMAGES[name]) layers.push(await writeLayer(blobDir, gen()));
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '2026-01-01T00:00:00Z',
    config: CONFIGS[name],
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: IMAGES[name].map((g) => ({ created: '2026-01-01T00:00:00Z', created_by: `bench generator: ${g.name}` })),
  });
  const cfg = await writeBlob(blobDir, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  });
  const man = await writeBlob(blobDir, manifest);
  const tag = '1';
  await writeFile(
    path.join(tmp, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  await writeFile(path.join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const layout: Layout = { dir, tag, layers };
  await writeFile(path.join(tmp, 'bench-layout.json'), JSON.stringify(layout, null, 2));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return layout;
}
