import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { Annotations, MediaTypes, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type Platform } from '../../src/core/media-types.ts';
import { tarStream, type TarItem } from '../../src/core/tar-write.ts';

/**
 * Builds OCI images for tests and benchmarks without any engine, into an
 * OCI image layout directory (oci-layout, index.json, blobs/sha256/...).
 * `pushToRegistry` then copies it with skopeo, which doubles as an
 * independent check that what we built is valid.
 *
 * Example:
 *   const img = await buildImage(dir, {
 *     layers: [{ files: busyboxRootfs() }, { files: [{ path: 'etc/motd', content: 'hi\n' }] }],
 *     config: { Cmd: ['sh'] },
 *   }, { tag: 'v1' });
 *   await pushToRegistry(dir, `${reg.host}/demo:v1`);
 */
const execFileP = promisify(execFile);

export type LayerFile =
  | {
      path: string;
      type?: 'file';
      /** Literal content, */
      content?: string | Buffer;
      /** or `size` bytes of random (incompressible) or text (compressible) data, */
      size?: number;
      fill?: 'random' | 'text';
      /** or a host file copied as is. */
      source?: string;
      mode?: number;
      uid?: number;
      gid?: number;
      mtime?: number;
      xattrs?: Record<string, string>;
    }
  | { path: string; type: 'dir'; mode?: number; uid?: number; gid?: number; mtime?: number }
  | { path: string; type: 'symlink'; target: string; uid?: number; gid?: number }
  | { path: string; type: 'hardlink'; target: string }
  /** Deletes `path` from lower layers (`.wh.NAME`). */
  | { path: string; type: 'whiteout' }
  /** Hides everything lower layers had in directory `path` (`.wh..wh..opq`). */
  | { path: string; type: 'opaque' };

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerSpec {
  files?: LayerFile[];
  /** A host directory to tar (relative paths, ownership and modes kept). */
  dir?: string;
  compression?: Compression;
  /** History `created_by` text. */
  createdBy?: string;
}

export interface ImageSpec {
  layers: LayerSpec[];
  config?: ImageConfig['config'];
  platform?: Platform;
  compression?: Compression;
  created?: string;
  annotations?: Record<string, string>;
}

export interface BuiltLayer extends Descriptor {
  diffId: string;
}

export interface BuiltImage {
  layout: string;
  manifest: Descriptor;
  manifestJson: ImageManifest;
  config: Descriptor;
  configJson: ImageConfig;
  layers: BuiltLayer[];
}

const layerTypes: Record<Compression, string> = {
  gzip: MediaTypes.ociLayerGzip,
  zstd: MediaTypes.ociLayerZstd,
  none: MediaTypes.ociLayer,
};

async function initLayout(layout: string): Promise<void> {
  await mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

/** Write `data` as a blob of the layout and return its descriptor. */
export async function writeBlob(layout: string, mediaType: string, data: Buffer | string): Promise<Descriptor> {
  await initLayout(layout);
  const buf = Buffer.from(data);
  const hex = createHash('sha256').update(buf).digest('hex');
  await writeFile(path.join(layout, 'blobs', 'sha256', hex), buf);
  return { mediaType, digest: `sha256:${hex}`, size: buf.length };
}

function hasher(): { t: Transform; hex: () => string; size: () => number } {
  const h = createHash('sha256');
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  let digest: string | undefined;
  return { t, hex: () => (digest ??= h.digest('hex')), size: () => n };
}

async function* filler(size: number, kind: 'random' | 'text'): AsyncGenerator<Buffer> {
  const text = Buffer.from('The quick brown fox jumps over the lazy dog. 0123456789\n');
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1 << 20);
    yield kind === 'random' ? randomBytes(n) : Buffer.alloc(n, text);
    left -= n;
  }
}

async function itemsOfFiles(files: LayerFile[]): Promise<TarItem[]> {
  const out: TarItem[] = [];
  const seenDirs = new Set<string>();
  const clean = (p: string) => p.replace(/^\/+/, '').replace(/\/+$/, '');
  const parents = (p: string) => {
    const parts = clean(p).split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!seenDirs.has(d) && !files.some((f) => f.type === 'dir' && clean(f.path) === d)) {
        seenDirs.add(d);
        out.push({ entry: { name: d, type: 'dir', mode: 0o755 } });
      }
    }
  };
  for (const f of files) {
    const name = clean(f.path);
    parents(name);
    const base = path.posix.basename(name);
    const dir = path.posix.dirname(name);
    const join = (b: string) => (dir === '.' ? b : `${dir}/${b}`);
    switch (f.type) {
      case 'dir':
        seenDirs.add(name);
        out.push({ entry: { name, type: 'dir', mode: f.mode ?? 0o755, uid: f.uid, gid: f.gid, mtime: f.mtime } });
        break;
      case 'symlink':
        out.push({ entry: { name, type: 'symlink', linkname: f.target, mode: 0o777, uid: f.uid, gid: f.gid } });
        break;
      case 'hardlink':
        out.push({ entry: { name, type: 'hardlink', linkname: clean(f.target) } });
        break;
      case 'whiteout':
        out.push({ entry: { name: join(`.wh.${base}`), type: 'file', size: 0 } });
        break;
      case 'opaque':
        if (!seenDirs.has(name)) {
          seenDirs.add(name);
          out.push({ entry: { name, type: 'dir', mode: 0o755 } });
        }
        out.push({ entry: { name: `${name}/.wh..wh..opq`, type: 'file', size: 0 } });
        break;
      default: {
        let size: number;
        let body: TarItem['body'];
        if (f.source !== undefined) {
          size = (await stat(f.source)).size;
          body = createReadStream(f.source);
        } else if (f.content !== undefined) {
          body = Buffer.from(f.content);
          size = body.length;
        } else {
          size = f.size ?? 0;
          body = filler(size, f.fill ?? 'random');
        }
        out.push({ entry: { name, type: 'file', size, mode: f.mode ?? 0o644, uid: f.uid, gid: f.gid, mtime: f.mtime, xattrs: f.xattrs }, body });
      }
    }
  }
  return out;
}

async function* itemsOfDir(root: string): AsyncGenerator<TarItem> {
  const inodes = new Map<string, string>();
  async function* walk(rel: string): AsyncGenerator<TarItem> {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const full = path.join(root, r);
      const st = await lstat(full);
      const common = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        yield { entry: { name: r, type: 'dir', ...common } };
        yield* walk(r);
      } else if (st.isSymbolicLink()) {
        yield { entry: { name: r, type: 'symlink', linkname: await readlink(full), ...common } };
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first) {
          yield { entry: { name: r, type: 'hardlink', linkname: first, ...common } };
        } else {
          if (st.nlink > 1) inodes.set(key, r);
          yield { entry: { name: r, type: 'file', size: st.size, ...common }, body: createReadStream(full) };
        }
      } else if (st.isFIFO()) {
        yield { entry: { name: r, type: 'fifo', ...common } };
      }
    }
  }
  yield* walk('');
}

function compressor(c: Compression): Transform {
  if (c === 'gzip') return zlib.createGzip();
  if (c === 'zstd') return zlib.createZstdCompress();
  return new PassThrough();
}

/** Write one layer blob into the layout; returns its descriptor and diff id. */
export async function buildLayer(layout: string, spec: LayerSpec, compression: Compression = 'gzip'): Promise<BuiltLayer> {
  await initLayout(layout);
  const c = spec.compression ?? compression;
  const tar: Readable = spec.dir !== undefined ? tarStream(itemsOfDir(spec.dir)) : tarStream(await itemsOfFiles(spec.files ?? []));
  const diff = hasher();
  const blob = hasher();
  const tmp = path.join(layout, 'blobs', 'sha256', `.tmp-${randomBytes(6).toString('hex')}`);
  await pipeline(tar, diff.t, compressor(c), blob.t, createWriteStream(tmp));
  await rename(tmp, path.join(layout, 'blobs', 'sha256', blob.hex()));
  return { mediaType: layerTypes[c], digest: `sha256:${blob.hex()}`, size: blob.size(), diffId: `sha256:${diff.hex()}` };
}

/** Build an image (layers, config, manifest) into `layout`; with `tag`, index.json names it. */
export async function buildImage(layout: string, spec: ImageSpec, opts: { tag?: string } = {}): Promise<BuiltImage> {
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const created = spec.created ?? '2024-01-01T00:00:00Z';
  const layers: BuiltLayer[] = [];
  for (const l of spec.layers) layers.push(await buildLayer(layout, l, spec.compression));
  const configJson: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...spec.config },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: spec.layers.map((l, i) => ({ created, created_by: l.createdBy ?? `berth test layer ${i}` })),
  };
  const config = await writeBlob(layout, MediaTypes.ociConfig, JSON.stringify(configJson));
  const manifestJson: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config,
    layers: layers.map(({ diffId: _d, ...d }) => d),
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  };
  const manifest = { ...(await writeBlob(layout, MediaTypes.ociManifest, JSON.stringify(manifestJson))), platform };
  if (opts.tag !== undefined) await addToIndex(layout, manifest, opts.tag);
  return { layout, manifest, manifestJson, config, configJson, layers };
}

/**
 * Build one image per spec and an image index over them (each spec gives
 * its `platform`); with `tag`, index.json names the index.
 */
export async function buildMultiPlatform(layout: string, specs: ImageSpec[], opts: { tag?: string } = {}): Promise<{ index: Descriptor; indexJson: ImageIndex; images: BuiltImage[] }> {
  const images: BuiltImage[] = [];
  for (const s of specs) images.push(await buildImage(layout, s));
  const indexJson: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: images.map((i) => i.manifest) };
  const index = await writeBlob(layout, MediaTypes.ociIndex, JSON.stringify(indexJson));
  if (opts.tag !== undefined) await addToIndex(layout, index, opts.tag);
  return { index, indexJson, images };
}

async function addToIndex(layout: string, desc: Descriptor, tag: string): Promise<void> {
  const file = path.join(layout, 'index.json');
  let idx: ImageIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
  try {
    idx = JSON.parse(await readFile(file, 'utf8')) as ImageIndex;
  } catch {
    // no index yet
  }
  idx.manifests = idx.manifests.filter((m) => m.annotations?.[Annotations.refName] !== tag);
  const { platform: _p, ...plain } = desc;
  idx.manifests.push({ ...plain, annotations: { [Annotations.refName]: tag } });
  await writeFile(file, JSON.stringify(idx));
}

/**
 * Copy the layout's `tag` (default: the ref's tag) to `ref` in a registry
 * with skopeo (plain HTTP). `format: 'v2s2'` converts to Docker schema2 on
 * the way; `creds` is `user:password`.
 */
export async function pushToRegistry(layout: string, ref: string, opts: { tag?: string; format?: 'oci' | 'v2s2'; creds?: string } = {}): Promise<void> {
  const tag = opts.tag ?? (ref.slice(ref.lastIndexOf('/')).split(':')[1] || 'latest');
  const args = ['copy', '--quiet', '--all', '--dest-tls-verify=false'];
  if (opts.format === 'v2s2') args.push('--format', 'v2s2');
  else args.push('--preserve-digests');
  if (opts.creds) args.push('--dest-creds', opts.creds);
  args.push(`oci:${layout}:${tag}`, `docker://${ref}`);
  await execFileP('skopeo', args, { env: { ...process.env, HOME: process.env.HOME ?? '/root' }, timeout: 120_000 });
}

const BUSYBOX_APPLETS = [
  'sh', 'ls', 'cat', 'echo', 'sleep', 'true', 'false', 'id', 'env', 'ps', 'mkdir', 'rm', 'cp', 'mv', 'touch',
  'grep', 'head', 'tail', 'wc', 'hostname', 'pwd', 'test', 'printf', 'kill', 'date', 'uname', 'whoami',
  'ip', 'ping', 'wget', 'nc', 'stat', 'chmod', 'chown', 'ln', 'readlink', 'sed', 'awk', 'tee', 'dd', 'mount',
  'df', 'du', 'find', 'xargs', 'seq', 'sort', 'yes', 'nslookup', 'top', 'vi', 'tr', 'cut', 'md5sum', 'sha256sum',
];

/**
 * A minimal rootfs from the host's static busybox: /bin/busybox, applet
 * symlinks in /bin, /etc/passwd and /etc/group with root and nobody, /tmp,
 * plus the empty directories runtimes mount over.
 */
export function busyboxRootfs(busybox = '/bin/busybox'): LayerFile[] {
  return [
    { path: 'bin', type: 'dir' },
    { path: 'bin/busybox', source: busybox, mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): LayerFile => ({ path: `bin/${a}`, type: 'symlink', target: 'busybox' })),
    { path: 'etc', type: 'dir' },
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
    { path: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
    { path: 'root', type: 'dir', mode: 0o700 },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
    { path: 'dev', type: 'dir' },
    { path: 'proc', type: 'dir' },
    { path: 'sys', type: 'dir' },
    { path: 'var', type: 'dir' },
  ];
}

/** A ready busybox image spec; `extra` layers come on top. */
export function busyboxImage(extra: LayerSpec[] = [], config: ImageConfig['config'] = { Cmd: ['sh'] }): ImageSpec {
  return { layers: [{ files: busyboxRootfs(), createdBy: 'busybox rootfs' }, ...extra], config };
}
