import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliCommand } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { contextMaker } from '../helpers/build-context.ts';

/**
 * `berth build` end to end: a real berthd builds Dockerfiles on a busybox
 * base pulled from a loopback registry; RUN steps run under runc; results
 * are checked by running them and by reading the image back.
 */
describe('berth build', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  before(async () => {
    e = await startEngine({ extraConfig: '[build]\nmax_context_bytes = 1048576\n' });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-build-'));
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => e.d.cli(args);
  /** A fresh context directory with these files. */
  const context = contextMaker(() => tmp);
  const inspect = async (ref: string) => {
    const r = await cli('image', 'inspect', ref);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Array<{ Id: string; Config: Record<string, unknown>; RootFS: { Layers: string[] } }>)[0];
  };

  it('builds a single stage: RUN, COPY, ENV, WORKDIR, USER, CMD carried across steps', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nENV GREETING=hello DIR=/app\nWORKDIR $DIR\nCOPY hello.txt ./\nRUN echo "$GREETING from $(pwd)" > out.txt && cat hello.txt >> out.txt\nRUN echo "app:x:1234:1234::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1234:" >> /etc/group\nCOPY --chown=app hello.txt /home/app/mine.txt\nUSER app\nRUN id -u > /tmp/uid && ls -ln /home/app/mine.txt > /tmp/mine\nLABEL org.example.name=test\nEXPOSE 8080\nCMD ["cat", "/app/out.txt"]\n`,
      'hello.txt': 'file content\n',
    });
    const r = await cli('build', '--progress=plain', '-t', 'single:1', '-t', 'single:2', dir);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, /#\d+ \[stage-0 2\/12\] ENV GREETING=hello DIR=\/app/);
    assert.match(r.stderr, /naming to single:1/);
    const run = await cli('run', '--rm', 'single:1');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'hello from /app\nfile content\n');
    const uid = await cli('run', '--rm', 'single:2', 'cat', '/tmp/uid');
    assert.equal(uid.stdout, '1234\n');
    // --chown=NAME: the user's uid, and the same number as gid, as Docker does.
    assert.match((await cli('run', '--rm', 'single:2', 'cat', '/tmp/mine')).stdout, /^-rw-r--r--\s+1 1234\s+1234 /);
    const img = await inspect('single:1');
    assert.equal(img.Config.User, 'app');
    assert.equal(img.Config.WorkingDir, '/app');
    assert.deepEqual(img.Config.Cmd, ['cat', '/app/out.txt']);
    assert.deepEqual(img.Config.ExposedPorts, { '8080/tcp': {} });
    assert.deepEqual((img.Config.Labels as Record<string, string>)['org.example.name'], 'test');
    assert.ok((img.Config.Env as string[]).includes('GREETING=hello'));
    const hist = await cli('history', '--no-trunc', '--format', '{{.CreatedBy}}', 'single:1');
    assert.match(hist.stdout, /^\/bin\/sh -c #\(nop\)  CMD \["cat","\/app\/out.txt"\]$/m);
    assert.match(hist.stdout, /^\/bin\/sh -c echo "\$GREETING from \$\(pwd\)" > out.txt && cat hello.txt >> out.txt$/m);
    assert.match(hist.stdout, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/app\/ $/m);
    assert.equal((await cli('ps', '-aq')).stdout, '', 'no build container is left');
  });

  /** The image's root file system as umoci unpacks it from `berth save --format oci`. */
  const umociRootfs = async (ref: string): Promise<string> => {
    const out = mkdtempSync(path.join(tmp, 'umoci-'));
    mkdirSync(path.join(out, 'layout'), { recursive: true });
    const saved = await cli('save', '--format', 'oci', '-o', path.join(out, 'image.tar'), ref);
    assert.equal(saved.code, 0, saved.stderr);
    execFileSync('tar', ['-xf', path.join(out, 'image.tar'), '-C', path.join(out, 'layout')]);
    execFileSync('umoci', ['unpack', '--image', `${path.join(out, 'layout')}:${ref.split(':').pop()}`, path.join(out, 'bundle')], { stdio: 'pipe' });
    return path.join(out, 'bundle', 'rootfs');
  };
  const steps = (stderr: string) => [...stderr.matchAll(/^#(\d+) \[[^\]]+\] (.*)$/gm)].map((m) => ({ n: m[1], text: m[2], cached: new RegExp(`^#${m[1]} CACHED$`, 'm').test(stderr) }));
  const cachedTexts = (stderr: string) => steps(stderr).filter((s) => s.cached).map((s) => s.text);
  const leftovers = async () => {
    const ps = (await cli('ps', '-aq')).stdout;
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => (l.split(' ')[4] ?? '').startsWith(e.d.dir + '/') && !/\/rootfs$/.test(l.split(' ')[4]));
    const builds = existsSync(path.join(e.d.root, 'builds')) ? readdirSync(path.join(e.d.root, 'builds')) : [];
    // Leases other than the cache's, and snapshots that are not committed layers (a container's or a step's).
    const db = new DatabaseSync(path.join(e.d.root, 'metadata.db'), { readOnly: true });
    try {
      const leases = (db.prepare(`SELECT id FROM leases WHERE id NOT LIKE 'build-cache.%'`).all() as Array<{ id: string }>).map((r) => r.id);
      const active = (db.prepare(`SELECT key FROM snapshots WHERE kind != 'committed'`).all() as Array<{ key: string }>).map((r) => r.key);
      return { ps, mounts: mounts.length, builds, leases, active };
    } finally {
      db.close();
    }
  };

  it('reuses the cache when nothing changed, and misses from the first step whose input changed', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nARG V=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy && echo $V >> /copy\nCOPY b.txt /b.txt\nRUN date +%s%N > /stamp\n`,
      'a.txt': 'a\n',
      'b.txt': 'b\n',
    });
    const first = await cli('build', '--progress=plain', '-q', dir);
    assert.equal(first.code, 0, first.stderr);
    const id1 = first.stdout.trim();
    assert.match(id1, /^sha256:[0-9a-f]{64}$/);
    const again = await cli('build', '--progress=plain', dir);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(cachedTexts(again.stderr), ['COPY a.txt /a.txt', 'RUN cat /a.txt > /copy && echo $V >> /copy', 'COPY b.txt /b.txt', 'RUN date +%s%N > /stamp']);
    assert.match(again.stderr, new RegExp(`writing image ${id1}`), 'the same image again');
    // A new mtime alone is no change; new content is.
    utimesSync(path.join(dir, 'a.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    writeFileSync(path.join(dir, 'b.txt'), 'b changed\n');
    const changed = await cli('build', '--progress=plain', dir);
    assert.equal(changed.code, 0, changed.stderr);
    assert.deepEqual(cachedTexts(changed.stderr), ['COPY a.txt /a.txt', 'RUN cat /a.txt > /copy && echo $V >> /copy']);
    // A build arg the RUN sees changes its key.
    const arg = await cli('build', '--progress=plain', '--build-arg', 'V=2', '-t', 'cache:arg', dir);
    assert.equal(arg.code, 0, arg.stderr);
    assert.deepEqual(cachedTexts(arg.stderr), ['COPY a.txt /a.txt']);
    assert.equal((await cli('run', '--rm', 'cache:arg', 'cat', '/copy')).stdout, 'a\n2\n');
    const nocache = await cli('build', '--progress=plain', '--no-cache', dir);
    assert.equal(nocache.code, 0, nocache.stderr);
    assert.deepEqual(cachedTexts(nocache.stderr), []);
    // The cache survives a restart of berthd, and builder prune empties it.
    const exited = new Promise((r) => e.d.proc.once('exit', r));
    e.d.proc.kill('SIGTERM');
    await exited;
    await e.d.restart();
    const afterRestart = await cli('build', '--progress=plain', dir);
    assert.equal(cachedTexts(afterRestart.stderr).length, 4, afterRestart.stderr);
    const prune = await cli('system', 'prune', '-f');
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stdout, /Deleted build cache objects: [1-9]\d*/);
    assert.match((await cli('builder', 'prune', '-f')).stdout, /Deleted build cache objects: 0\n/);
    const afterPrune = await cli('build', '--progress=plain', dir);
    assert.equal(afterPrune.code, 0, afterPrune.stderr);
    assert.deepEqual(cachedTexts(afterPrune.stderr), []);
    assert.deepEqual(await leftovers(), { ps: '', mounts: 0, builds: [], leases: [], active: [] });
  });

  it('builds only the stages the target needs, independent ones side by side, and copies from stages and images', async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${e.image} AS one`,
        'RUN echo one > /one.txt && sleep 1',
        `FROM ${e.image} AS two`,
        'RUN echo two > /two.txt && sleep 1',
        `FROM ${e.image} AS broken`,
        'RUN echo never built && exit 9',
        'FROM one AS final',
        'COPY --from=two /two.txt /from-two.txt',
        `COPY --from=${e.image} /bin/busybox /copied-busybox`,
        'CMD ["cat", "/one.txt", "/from-two.txt"]',
        'FROM final AS extra',
        'RUN echo extra > /extra.txt',
      ].join('\n'),
    });
    const r = await cli('build', '--progress=plain', '--target', 'final', '-t', 'multi:1', dir);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /never built|extra/);
    // The two first stages ran at once: the second started before the first was done.
    const startTwo = r.stderr.indexOf('RUN echo two');
    const doneOne = r.stderr.search(new RegExp(`^#${steps(r.stderr).find((s) => s.text.startsWith('RUN echo one'))!.n} DONE`, 'm'));
    assert.ok(startTwo >= 0 && startTwo < doneOne, r.stderr);
    const run = await cli('run', '--rm', 'multi:1');
    assert.equal(run.stdout, 'one\ntwo\n');
    const rootfs = await umociRootfs('multi:1');
    assert.equal(readFileSync(path.join(rootfs, 'from-two.txt'), 'utf8'), 'two\n');
    assert.ok(statSync(path.join(rootfs, 'copied-busybox')).size > 100_000);
    assert.ok(!existsSync(path.join(rootfs, 'two.txt')));
    const missing = await cli('build', '--target', 'nope', dir);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /failed to reach build target nope/);
  });

  it('applies .dockerignore with exceptions, ADD unpacks a local tar, heredocs, --chown and --chmod', async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${e.image}`,
        'ARG WHO=world',
        'COPY . /ctx/',
        'ADD files.tar.gz /unpacked/',
        'COPY --chown=1000:1001 --chmod=0640 secret.txt /owned/',
        'COPY <<EOF /etc/greeting',
        'hello $WHO',
        'EOF',
        'RUN <<EOS',
        'set -e',
        'echo "from a heredoc" > /heredoc.txt',
        'EOS',
        "RUN cat <<'END' > /quoted.txt",
        'no $expansion here',
        'END',
      ].join('\n'),
      '.dockerignore': '*.log\n!keep.log\nbuild/\nsecret.txt\n',
      'a.log': 'ignored\n',
      'keep.log': 'kept\n',
      'build/out.o': 'ignored\n',
      'src/main.c': 'int main;\n',
      'secret.txt': 'not in /ctx but copied by name? no: ignored\n',
    });
    // A tar with a directory and a file, made by the system tar.
    mkdirSync(path.join(tmp, 'tarsrc/sub'), { recursive: true });
    writeFileSync(path.join(tmp, 'tarsrc/sub/inner.txt'), 'inside the tar\n');
    execFileSync('tar', ['-czf', path.join(dir, 'files.tar.gz'), '-C', path.join(tmp, 'tarsrc'), 'sub']);
    const failing = await cli('build', dir);
    assert.equal(failing.code, 1, 'secret.txt is ignored, so COPY of it fails');
    assert.match(failing.stderr, /secret\.txt.*not found/);
    writeFileSync(path.join(dir, '.dockerignore'), '*.log\n!keep.log\nbuild/\n');
    const r = await cli('build', '--progress=plain', '-t', 'tree:1', dir);
    assert.equal(r.code, 0, r.stderr);
    const rootfs = await umociRootfs('tree:1');
    assert.deepEqual(readdirSync(path.join(rootfs, 'ctx')).sort(), ['.dockerignore', 'Dockerfile', 'files.tar.gz', 'keep.log', 'secret.txt', 'src']);
    assert.equal(readFileSync(path.join(rootfs, 'ctx/src/main.c'), 'utf8'), 'int main;\n');
    assert.equal(lstatSync(path.join(rootfs, 'ctx/keep.log')).uid, 0);
    assert.equal(readFileSync(path.join(rootfs, 'unpacked/sub/inner.txt'), 'utf8'), 'inside the tar\n');
    const owned = lstatSync(path.join(rootfs, 'owned/secret.txt'));
    assert.deepEqual([owned.uid, owned.gid, owned.mode & 0o7777], [1000, 1001, 0o640]);
    assert.equal(readFileSync(path.join(rootfs, 'etc/greeting'), 'utf8'), 'hello world\n');
    assert.equal(readFileSync(path.join(rootfs, 'heredoc.txt'), 'utf8'), 'from a heredoc\n');
    assert.equal(readFileSync(path.join(rootfs, 'quoted.txt'), 'utf8'), 'no $expansion here\n');
  });

  it('a failing RUN names the step, shows its output and exit code, and leaves nothing but the steps it completed', async () => {
    const images = (await cli('images', '-q', '--no-trunc')).stdout;
    const dir = context({ Dockerfile: `FROM ${e.image}\nRUN echo done-before > /before\nRUN echo about to fail && echo on stderr >&2 && exit 7\nRUN echo never\n` });
    const r = await cli('build', '--progress=plain', dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /about to fail/);
    assert.match(r.stderr, /step 3\/4 RUN echo about to fail.*returned a non-zero code: 7/);
    assert.doesNotMatch(r.stderr, /#\d+ \[[^\]]+\] RUN echo never/);
    assert.deepEqual(await leftovers(), { ps: '', mounts: 0, builds: [], leases: [], active: [] });
    assert.equal((await cli('images', '-q', '--no-trunc')).stdout, images, 'no image record is left');
    // Quiet or on a terminal, the failed step's output is printed whole after the error.
    const quiet = await cli('build', '-q', dir);
    assert.equal(quiet.code, 1);
    assert.match(quiet.stderr, /=> ERROR \[stage-0 3\/4\] RUN echo about to fail.*\nabout to fail\non stderr\n/s);
    writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${e.image}\nRUN echo done-before > /before\nRUN echo fixed\n`);
    const fixed = await cli('build', '--progress=plain', dir);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual(cachedTexts(fixed.stderr), ['RUN echo done-before > /before'], 'the completed step was cached');
    // tty progress: one line per finished step, cached ones marked.
    const tty = await cli('build', '--progress=tty', dir);
    assert.equal(tty.code, 0, tty.stderr);
    // The live block is redrawn in place: cursor up and clear below, then the lines again.
    const drawn = tty.stderr.replace(/\x1b\[\d+A\x1b\[J/g, '');
    assert.match(drawn, /^=> CACHED \[stage-0 2\/3\] RUN echo done-before > \/before$/m);
    assert.match(drawn, /^=> exporting to image$/m);
    assert.match(drawn, /^\[\+\] Building \d+\.\ds \(3\/3\) FINISHED$/m);
  });

  it('refuses bad input with a clear message and a non-zero exit', async () => {
    const unknown = await cli('build', context({ Dockerfile: `FROM ${e.image}\nFROBNICATE x\n` }));
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Dockerfile:2:1: unknown instruction: FROBNICATE/);
    const missingFile = await cli('build', context({ Dockerfile: `FROM ${e.image}\nCOPY nothere.txt /x\n` }));
    assert.equal(missingFile.code, 1);
    assert.match(missingFile.stderr, /nothere\.txt.*not found/);
    // A Dockerfile that is a symlink is followed inside the context, and only there.
    const linked = context({ 'real.Dockerfile': `FROM ${e.image}\n` });
    symlinkSync('real.Dockerfile', path.join(linked, 'Dockerfile'));
    assert.equal((await cli('build', '-q', linked)).code, 0);
    const outside = context({ 'x.txt': '' });
    symlinkSync('/etc/hostname', path.join(outside, 'Dockerfile'));
    const escaped = await cli('build', outside);
    assert.equal(escaped.code, 1);
    const noDockerfile = await cli('build', context({ 'other.txt': 'x' }));
    assert.equal(noDockerfile.code, 1);
    assert.match(noDockerfile.stderr, /Dockerfile/);
    const big = context({ Dockerfile: `FROM ${e.image}\nCOPY big /big\n` });
    writeFileSync(path.join(big, 'big'), Buffer.alloc(2 << 20, 1));
    // The bound is on what a client sends: the Node CLI sends a tar (hosted, berthd reads the directory in place and stores nothing).
    const tooBig = await e.d.cli(['build', big], { env: { BERTH_CLI_LOCAL: '1' } });
    assert.equal(tooBig.code, 1);
    assert.match(tooBig.stderr, /build context is larger than the limit of 1048576 bytes/);
    const badTag = await cli('build', '-t', 'Bad:Tag!', context({ Dockerfile: `FROM ${e.image}\nRUN true\n` }));
    assert.equal(badTag.code, 1);
    assert.match(badTag.stderr, /invalid tag "Bad:Tag!"/);
    assert.doesNotMatch(badTag.stderr, /RUN true/, 'refused before any step');
    // One stage fails while another runs: the build answers once the running one's container is gone.
    const twoStages = context({ Dockerfile: `FROM ${e.image} AS slow\nRUN sleep 600\nFROM ${e.image} AS fast\nRUN sleep 1 && exit 4\nFROM ${e.image}\nCOPY --from=slow /etc/passwd /a\nCOPY --from=fast /etc/passwd /b\n` });
    const failed = await cli('build', '--progress=plain', twoStages);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /returned a non-zero code: 4/);
    assert.deepEqual(await leftovers(), { ps: '', mounts: 0, builds: [], leases: [], active: [] });
    const badImage = await cli('build', context({ Dockerfile: 'FROM 127.0.0.1:1/none/such:1\n' }));
    assert.equal(badImage.code, 1);
    assert.match(badImage.stderr, /image "127\.0\.0\.1:1\/none\/such:1" \(not a stage of this Dockerfile, nor in the store\)/);
    const noStage = await cli('build', context({ Dockerfile: `FROM ${e.image}\nCOPY --from=5 /etc/passwd /p\n` }));
    assert.equal(noStage.code, 1);
    assert.match(noStage.stderr, /stage index 5 is not an earlier stage/);
    assert.deepEqual(await leftovers(), { ps: '', mounts: 0, builds: [], leases: [], active: [] });
  });

  it('reads the Dockerfile or the context from stdin, writes --iidfile, and sets --label', async () => {
    const df = `FROM ${e.image}\nRUN echo piped > /piped\n`;
    const alone = await e.d.cli(['build', '-q', '-'], { input: df });
    assert.equal(alone.code, 0, alone.stderr);
    // --pull asks the registry again for a base image that is here.
    const pulled = await e.d.cli(['build', '--pull', '--progress=plain', '-'], { input: df });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stderr, /^#1 .*(Digest|Status|Already exists)/m);
    assert.match(alone.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const dir = context({ 'x.txt': 'x\n' });
    const viaF = await e.d.cli(['build', '-q', '-f', '-', '--label', 'a=b', '--iidfile', path.join(tmp, 'iid'), dir], { input: `FROM ${e.image}\nCOPY x.txt /\n` });
    assert.equal(viaF.code, 0, viaF.stderr);
    assert.equal(readFileSync(path.join(tmp, 'iid'), 'utf8'), viaF.stdout.trim());
    assert.equal(((await inspect(viaF.stdout.trim())).Config.Labels as Record<string, string>).a, 'b');
    const tarDir = context({ Dockerfile: `FROM ${e.image}\nCOPY y.txt /\n`, 'y.txt': 'y\n' });
    const tar = execFileSync('tar', ['-cf', '-', '-C', tarDir, '.']);
    const fromTar = await e.d.cli(['build', '-q', '-t', 'fromtar:1', '-'], { input: tar });
    assert.equal(fromTar.code, 0, fromTar.stderr);
    assert.equal((await cli('run', '--rm', 'fromtar:1', 'cat', '/y.txt')).stdout, 'y\n');
  });

  it('RUN --mount: a cache kept across builds, a read-only bind of the context or a stage, a tmpfs; no mount point in the layer', async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${e.image} AS tool`,
        'RUN echo from-tool > /tool.txt',
        `FROM ${e.image}`,
        'ARG N=1',
        'RUN --mount=type=cache,target=/var/cache/count,id=counter sh -c \'echo $N >> /var/cache/count/runs; wc -l < /var/cache/count/runs > /runs\'',
        'RUN --mount=type=bind,source=input.txt,target=/mnt/input.txt --mount=type=bind,from=tool,source=/tool.txt,target=/mnt/tool.txt cat /mnt/input.txt /mnt/tool.txt > /seen.txt',
        'RUN --mount=type=tmpfs,target=/scratch sh -c \'grep -q " /scratch tmpfs " /proc/mounts && echo tmp > /scratch/x && echo ok > /tmpfs.txt\'',
      ].join('\n'),
      'input.txt': 'from-context\n',
    });
    const first = await cli('build', '--progress=plain', '-t', 'mounts:1', dir);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await cli('run', '--rm', 'mounts:1', 'cat', '/runs', '/seen.txt', '/tmpfs.txt')).stdout, '1\nfrom-context\nfrom-tool\nok\n');
    // Another value of N misses the cache step; the cache mount still holds the first run's line.
    const second = await cli('build', '--progress=plain', '--build-arg', 'N=2', '-t', 'mounts:2', dir);
    assert.equal(second.code, 0, second.stderr);
    assert.equal((await cli('run', '--rm', 'mounts:2', 'cat', '/runs')).stdout, '2\n');
    // A changed bind source misses that step's cache.
    writeFileSync(path.join(dir, 'input.txt'), 'changed\n');
    const third = await cli('build', '--progress=plain', '--build-arg', 'N=2', '-t', 'mounts:3', dir);
    assert.equal(third.code, 0, third.stderr);
    assert.ok(cachedTexts(third.stderr).some((t) => t.includes('type=cache')));
    assert.ok(!cachedTexts(third.stderr).some((t) => t.includes('type=bind,source=input.txt')));
    assert.match((await cli('run', '--rm', 'mounts:3', 'cat', '/seen.txt')).stdout, /^changed\n/);
    const rootfs = await umociRootfs('mounts:3');
    assert.ok(!existsSync(path.join(rootfs, 'mnt')), 'the bind mount points are not in the image');
    assert.ok(!existsSync(path.join(rootfs, 'scratch')), 'nor the tmpfs one');
    assert.ok(!existsSync(path.join(rootfs, 'var/cache/count')), 'nor the cache mount');
    const bad = await cli('build', context({ Dockerfile: `FROM ${e.image}\nRUN --mount=type=secret,id=x,target=/s true\n` }));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Dockerfile:2:1: RUN --mount=type=secret,id=x,target=\/s: type "secret" is not supported/);
  });

  it('a build cut short by a berthd crash leaves no step container or context behind after the restart', async () => {
    const dir = context({ Dockerfile: `FROM ${e.image}\nRUN touch /started && sleep 600\n` });
    const build = cli('build', '--progress=plain', dir);
    // Wait for the state: the RUN step's container exists and runs.
    for (;;) {
      const ps = await cli('ps', '-q', '--filter', 'label=berth.build');
      if (ps.stdout.trim()) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await e.d.kill();
    const r = await build;
    assert.notEqual(r.code, 0);
    await e.d.restart();
    assert.deepEqual(await leftovers(), { ps: '', mounts: 0, builds: [], leases: [], active: [] });
  });

  it('SOURCE_DATE_EPOCH pins every time: the same inputs give the same layers and image, cache or not', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nWORKDIR /app/data\nCOPY a.txt .\nRUN echo made > made.txt && mkdir -p /var/new && echo $SOURCE_DATE_EPOCH > /var/new/epoch\n`,
      'a.txt': 'a\n',
    });
    const build = async () => {
      const r = await cli('build', '-q', '--no-cache', '--build-arg', 'SOURCE_DATE_EPOCH=1700000000', '-t', 'epoch:1', dir);
      assert.equal(r.code, 0, r.stderr);
      return inspect(r.stdout.trim());
    };
    const one = await build();
    const two = await build();
    assert.deepEqual(two.RootFS.Layers, one.RootFS.Layers);
    assert.equal(two.Id, one.Id);
    assert.equal((await cli('run', '--rm', one.Id, 'cat', '/var/new/epoch')).stdout, '1700000000\n');
    const hist = await cli('history', '--format', '{{.CreatedAt}}', '--no-trunc', one.Id);
    assert.match(hist.stdout, /^2023-11-14T22:13:20(\.000)?Z$/m);
    const rootfs = await umociRootfs('epoch:1');
    assert.ok(statSync(path.join(rootfs, 'var/new')).mtimeMs <= 1700000000 * 1000);
  });

  it('ADD of a URL on loopback; ONBUILD triggers run when the image is a FROM; SHELL, ENTRYPOINT, HEALTHCHECK, STOPSIGNAL, VOLUME', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/files/remote.txt') res.writeHead(200, { 'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT' }).end('fetched over http\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const base = context({
        Dockerfile: [
          `FROM ${e.image}`,
          `ADD http://127.0.0.1:${port}/files/remote.txt /downloads/`,
          'ONBUILD COPY trigger.txt /from-trigger.txt',
          'ONBUILD RUN echo triggered > /triggered',
          'SHELL ["/bin/sh", "-ec"]',
          'RUN echo "$0 $-" > /shell.txt',
          'HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD true',
          'STOPSIGNAL SIGINT',
          'VOLUME /data',
          'ENTRYPOINT ["/bin/sh", "-c"]',
        ].join('\n'),
      });
      const r = await cli('build', '--progress=plain', '-t', 'onbuild-base:1', base);
      assert.equal(r.code, 0, r.stderr);
      const img = await inspect('onbuild-base:1');
      assert.deepEqual(img.Config.OnBuild, ['COPY trigger.txt /from-trigger.txt', 'RUN echo triggered > /triggered']);
      assert.deepEqual(img.Config.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Timeout: 2e9, Retries: 4 });
      assert.equal(img.Config.StopSignal, 'SIGINT');
      assert.deepEqual(img.Config.Volumes, { '/data': {} });
      assert.deepEqual(img.Config.Entrypoint, ['/bin/sh', '-c']);
      assert.equal(img.Config.Cmd, null, 'ENTRYPOINT clears the inherited CMD');
      const rootfs = await umociRootfs('onbuild-base:1');
      assert.equal(readFileSync(path.join(rootfs, 'downloads/remote.txt'), 'utf8'), 'fetched over http\n');
      assert.equal(lstatSync(path.join(rootfs, 'downloads/remote.txt')).mode & 0o777, 0o600);
      assert.equal(lstatSync(path.join(rootfs, 'downloads/remote.txt')).mtimeMs, 1700000000_000);
      assert.equal(readFileSync(path.join(rootfs, 'shell.txt'), 'utf8').trim().split(' ')[1].includes('e'), true, 'SHELL flags reached RUN');
      const child = context({ Dockerfile: 'FROM onbuild-base:1\nRUN test -f /triggered\n', 'trigger.txt': 'via onbuild\n' });
      const c = await cli('build', '--progress=plain', '-t', 'onbuild-child:1', child);
      assert.equal(c.code, 0, c.stderr);
      const childImg = await inspect('onbuild-child:1');
      assert.equal(childImg.Config.OnBuild ?? null, null, 'triggers are not inherited');
      assert.equal((await cli('run', '--rm', '--entrypoint', 'cat', 'onbuild-child:1', '/from-trigger.txt')).stdout, 'via onbuild\n');
      const sum = 'sha256:' + createHash('sha256').update('fetched over http\n').digest('hex');
      const checked = await cli('build', context({ Dockerfile: `FROM ${e.image}\nADD --checksum=${sum} http://127.0.0.1:${port}/files/remote.txt /r\n` }));
      assert.equal(checked.code, 0, checked.stderr);
      const wrong = await cli('build', context({ Dockerfile: `FROM ${e.image}\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/remote.txt /r\n` }));
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /checksum mismatch: the download is sha256:[0-9a-f]{64}/);
      const missing = await cli('build', context({ Dockerfile: `FROM ${e.image}\nADD http://127.0.0.1:${port}/nothing /x\n` }));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /ADD http:\/\/127\.0\.0\.1:\d+\/nothing: the server answered 404/);
    } finally {
      server.close();
    }
  });

  it('--cache-from reuses the steps of an image in the store when its history matches', async () => {
    const dir = context({ Dockerfile: `FROM ${e.image}\nCOPY a.txt /a\nRUN date +%s%N > /stamp\nENV X=1\nRUN echo $X > /x\n`, 'a.txt': 'a\n' });
    const first = await cli('build', '-q', '-t', 'cf:1', dir);
    assert.equal(first.code, 0, first.stderr);
    const stamp = (await cli('run', '--rm', 'cf:1', 'cat', '/stamp')).stdout;
    assert.equal((await cli('builder', 'prune', '-f')).code, 0);
    const hinted = await cli('build', '--progress=plain', '--cache-from', 'cf:1', '--cache-from', 'no-such:1', '-t', 'cf:2', dir);
    assert.equal(hinted.code, 0, hinted.stderr);
    assert.deepEqual(cachedTexts(hinted.stderr), ['COPY a.txt /a', 'RUN date +%s%N > /stamp', 'RUN echo $X > /x']);
    assert.match(hinted.stderr, /--cache-from no-such:1: no such image here/);
    assert.equal((await cli('run', '--rm', 'cf:2', 'cat', '/stamp')).stdout, stamp, 'the layer came from cf:1, the command did not run');
    assert.deepEqual((await inspect('cf:2')).RootFS.Layers, (await inspect('cf:1')).RootFS.Layers);
    // Another file: the COPY differs from cf:1's, and so does everything after it.
    writeFileSync(path.join(dir, 'a.txt'), 'changed\n');
    assert.equal((await cli('builder', 'prune', '-f')).code, 0);
    const miss = await cli('build', '--progress=plain', '--cache-from', 'cf:1', dir);
    assert.equal(miss.code, 0, miss.stderr);
    assert.deepEqual(cachedTexts(miss.stderr), []);
  });

  it('two builds of the same Dockerfile at once both succeed and agree', async () => {
    const dir = context({ Dockerfile: `FROM ${e.image}\nCOPY a.txt /a\nRUN cat /a > /b\nLABEL twin=yes\n`, 'a.txt': `twin ${Date.now()}\n` });
    const [one, two] = await Promise.all([cli('build', '-q', '-t', 'twin:1', dir), cli('build', '-q', '-t', 'twin:2', dir)]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(two.code, 0, two.stderr);
    assert.equal((await cli('run', '--rm', 'twin:1', 'cat', '/b')).stdout, (await cli('run', '--rm', 'twin:2', 'cat', '/b')).stdout);
    const again = await cli('build', '--progress=plain', dir);
    assert.equal(cachedTexts(again.stderr).length, 2, again.stderr);
    assert.deepEqual(await leftovers(), { ps: '', mounts: 0, builds: [], leases: [], active: [] });
  });

  it('a client that goes away mid-RUN stops the build, and its container goes', async () => {
    const dir = context({ Dockerfile: `FROM ${e.image}\nRUN sleep 600\n` });
    const cmd = cliCommand(['-H', `unix://${e.d.socket}`, 'build', '--progress=plain', dir]);
    const p = spawn(cmd.file, cmd.args, { env: { ...process.env, ...cmd.env }, stdio: 'ignore' });
    const exited = new Promise((r) => p.once('exit', r));
    for (;;) {
      if ((await cli('ps', '-q', '--filter', 'label=berth.build')).stdout.trim()) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    p.kill('SIGINT');
    await exited;
    // Wait for the state: berthd sees the client leave and removes the step's container.
    for (;;) {
      const left = await leftovers();
      if (left.ps === '' && left.builds.length === 0 && left.active.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await leftovers(), { ps: '', mounts: 0, builds: [], leases: [], active: [] });
  });

  it('RUN on the default network, RUN --network=none, and --network none for the whole build', async () => {
    const dir = context({ Dockerfile: `FROM ${e.image}\nRUN grep -q eth0 /proc/net/dev\nRUN --network=none sh -c '! grep -q eth0 /proc/net/dev'\n` });
    const r = await cli('build', '--progress=plain', dir);
    assert.equal(r.code, 0, r.stderr);
    const none = await cli('build', '--progress=plain', '--network', 'none', context({ Dockerfile: `FROM ${e.image}\nRUN sh -c '! grep -q eth0 /proc/net/dev'\n` }));
    assert.equal(none.code, 0, none.stderr);
    const host = await cli('build', context({ Dockerfile: `FROM ${e.image}\nRUN --network=host true\n` }));
    assert.equal(host.code, 1);
    assert.match(host.stderr, /Dockerfile:2:1: RUN --network=host is not allowed/);
  });

  it('COPY --exclude and --parents; several sources need a directory ending in /', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nCOPY --exclude=*.log --exclude=secret app/ /app/\nCOPY --parents a/b/c.txt a/d/ /tree/\n`,
      'app/main.txt': 'main\n',
      'app/debug.log': 'noise\n',
      'app/secret': 'hidden\n',
      'app/sub/more.txt': 'more\n',
      'a/b/c.txt': 'c\n',
      'a/d/e.txt': 'e\n',
    });
    const r = await cli('build', '-q', '-t', 'excl:1', dir);
    assert.equal(r.code, 0, r.stderr);
    const rootfs = await umociRootfs('excl:1');
    assert.deepEqual(readdirSync(path.join(rootfs, 'app')).sort(), ['main.txt', 'sub']);
    assert.equal(readFileSync(path.join(rootfs, 'tree/a/b/c.txt'), 'utf8'), 'c\n');
    assert.equal(readFileSync(path.join(rootfs, 'tree/a/d/e.txt'), 'utf8'), 'e\n');
    // The excluded files are not part of the step's key either.
    writeFileSync(path.join(dir, 'app/debug.log'), 'other noise\n');
    const again = await cli('build', '--progress=plain', dir);
    assert.ok(cachedTexts(again.stderr).includes('COPY --exclude=*.log --exclude=secret app/ /app/'), again.stderr);
    const several = await cli('build', context({ Dockerfile: `FROM ${e.image}\nCOPY x.txt y.txt /etc\n`, 'x.txt': 'x', 'y.txt': 'y' }));
    assert.equal(several.code, 1);
    assert.match(several.stderr, /Dockerfile:2:1: When using COPY with more than one source file, the destination must be a directory and end with a \//);
  });
});


describe('berth build with zstd layers', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  before(async () => {
    e = await startEngine({ extraConfig: '[build]\ncompression = "zstd"\n' });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-build-zstd-'));
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('stores new layers zstd-compressed, and the image runs', async () => {
    writeFileSync(path.join(tmp, 'Dockerfile'), `FROM ${e.image}\nRUN echo squeezed > /z\n`);
    const r = await e.d.cli(['build', '-q', '-t', 'zstd:1', tmp]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await e.d.cli(['run', '--rm', 'zstd:1', 'cat', '/z'])).stdout, 'squeezed\n');
    const saved = await e.d.cli(['save', '--format', 'oci', '-o', path.join(tmp, 'z.tar'), 'zstd:1']);
    assert.equal(saved.code, 0, saved.stderr);
    mkdirSync(path.join(tmp, 'layout'));
    execFileSync('tar', ['-xf', path.join(tmp, 'z.tar'), '-C', path.join(tmp, 'layout')]);
    const index = JSON.parse(readFileSync(path.join(tmp, 'layout/index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const blob = (d: string) => JSON.parse(readFileSync(path.join(tmp, 'layout/blobs/sha256', d.slice(7)), 'utf8'));
    const manifest = blob(index.manifests[0].digest) as { layers: Array<{ mediaType: string; digest: string }> };
    const last = manifest.layers.at(-1)!;
    assert.equal(last.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    assert.equal(readFileSync(path.join(tmp, 'layout/blobs/sha256', last.digest.slice(7))).readUInt32LE(0), 0xfd2fb528);
  });
});
