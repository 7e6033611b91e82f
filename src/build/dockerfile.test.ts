import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kindOf } from '../core/errors.ts';
import { flagValue, parseDockerfile, type Instruction, type InstructionOf } from './dockerfile.ts';

function only<K extends Instruction['kind']>(src: string, kind: K): InstructionOf<K> {
  const ins = parseDockerfile(`FROM scratch\n${src}`).stages[0].instructions[0];
  assert.equal(ins.kind, kind);
  return ins as InstructionOf<K>;
}

function fails(src: string, re: RegExp) {
  assert.throws(() => parseDockerfile(src, 'Dockerfile'), (e: Error) => kindOf(e) === 'InvalidArgument' && re.test(e.message), `expected ${re}`);
}

test('stages, names, platform and meta args', () => {
  const df = parseDockerfile('ARG V=1\nARG BASE\nFROM --platform=$BUILDPLATFORM busybox:$V AS Build\nRUN true\nfrom build\ncopy --from=build /a /b\n');
  assert.equal(df.metaArgs.length, 2);
  assert.deepEqual(df.metaArgs[0].args, [{ key: 'V', value: '1' }]);
  assert.deepEqual(df.metaArgs[1].args, [{ key: 'BASE' }]);
  assert.equal(df.stages.length, 2);
  assert.equal(df.stages[0].name, 'build');
  assert.equal(df.stages[0].from.image, 'busybox:$V');
  assert.equal(df.stages[0].from.platform, '$BUILDPLATFORM');
  assert.equal(df.stages[1].from.image, 'build');
  const copy = df.stages[1].instructions[0];
  assert.equal(copy.kind, 'COPY');
  assert.equal(flagValue(copy, 'from'), 'build');
});

test('parser directives: escape, syntax, only at the top', () => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN a `\n  b\n');
  assert.equal(df.directives.syntax, 'docker/dockerfile:1');
  assert.equal(df.directives.escape, '`');
  const run = df.stages[0].instructions[0];
  assert.equal(run.kind === 'RUN' && !run.command.json && run.command.shell, 'a   b');
  // After any other line a directive is a comment.
  const late = parseDockerfile('FROM scratch\n# escape=`\nRUN a \\\n b\n');
  assert.equal(late.directives.escape, '\\');
  fails('# escape=x\nFROM scratch\n', /Dockerfile:1:1: invalid escape token/);
  fails('# escape=`\n# escape=\\\nFROM scratch\n', /only one "escape"/);
});

test('continuations skip comments and empty lines; comments anywhere', () => {
  const run = only('RUN echo a \\\n# a comment\n\n  && echo b \\\n  && echo c\n# end\n', 'RUN');
  assert.deepEqual(run.command, { json: false, shell: 'echo a   && echo b   && echo c' });
  assert.equal(run.pos.line, 2);
  assert.equal(run.original, 'RUN echo a   && echo b   && echo c');
});

test('exec and shell forms', () => {
  assert.deepEqual(only('CMD ["sh", "-c", "echo $HOME"]', 'CMD').command, { json: true, args: ['sh', '-c', 'echo $HOME'] });
  assert.deepEqual(only('ENTRYPOINT top -b', 'ENTRYPOINT').command, { json: false, shell: 'top -b' });
  // Not valid JSON: shell form, as Docker treats it.
  assert.deepEqual(only("CMD ['a']", 'CMD').command, { json: false, shell: "['a']" });
  assert.deepEqual(only('SHELL ["/bin/ash", "-eo", "pipefail", "-c"]', 'SHELL').args, ['/bin/ash', '-eo', 'pipefail', '-c']);
  fails('FROM scratch\nSHELL /bin/sh -c\n', /Dockerfile:2:1: SHELL requires the JSON form/);
});

test('heredocs for RUN and COPY', () => {
  const df = parseDockerfile('FROM scratch\nRUN <<EOF\necho one\n# kept\necho "$HOME"\nEOF\nCOPY <<-"END" /etc/motd\n\thello $USER\n\tEND\nRUN cat <<A >/a && cat <<B >/b\na\nA\nb\nB\nRUN echo done\n');
  const [run, copy, two, last] = df.stages[0].instructions;
  assert.equal(run.kind, 'RUN');
  if (run.kind !== 'RUN') return;
  assert.deepEqual(run.heredocs, [{ name: 'EOF', content: 'echo one\n# kept\necho "$HOME"\n', expand: true, chomp: false }]);
  assert.equal(copy.kind, 'COPY');
  if (copy.kind !== 'COPY') return;
  assert.deepEqual(copy.sources, ['<<-"END"']);
  assert.equal(copy.dest, '/etc/motd');
  assert.deepEqual(copy.heredocs, [{ name: 'END', content: 'hello $USER\n', expand: false, chomp: true }]);
  assert.equal(two.kind === 'RUN' && two.heredocs.map((h) => h.content).join('|'), 'a\n|b\n');
  assert.equal(last.kind === 'RUN' && !last.command.json && last.command.shell, 'echo done');
  fails('FROM scratch\nRUN <<EOF\necho never ends\n', /Dockerfile:2:1: unterminated heredoc/);
});

test('ENV and LABEL pairs, legacy form, quotes kept for expansion', () => {
  assert.deepEqual(only('ENV A=1 B="two words" C=$A', 'ENV').pairs, [{ key: 'A', value: '1' }, { key: 'B', value: '"two words"' }, { key: 'C', value: '$A' }]);
  assert.deepEqual(only('ENV PATH /usr/bin:/bin  x', 'ENV').pairs, [{ key: 'PATH', value: '/usr/bin:/bin  x' }]);
  assert.deepEqual(only('LABEL "com.example.vendor"="ACME" version=1.0', 'LABEL').pairs, [{ key: '"com.example.vendor"', value: '"ACME"' }, { key: 'version', value: '1.0' }]);
  fails('FROM scratch\nENV A\n', /Dockerfile:2:1: ENV A: a value is missing/);
  fails('FROM scratch\nENV A=1 B\n', /"B" is not of the form KEY=VALUE/);
  fails('FROM scratch\nENV A="open\n', /unterminated double quote/);
});

test('COPY and ADD: flags, JSON form, several sources', () => {
  const c = only('COPY --chown=1:2 --chmod=640 --link a b* ["x"] /dst/', 'COPY');
  assert.deepEqual(c.flags, [{ name: 'chown', value: '1:2' }, { name: 'chmod', value: '640' }, { name: 'link' }]);
  assert.deepEqual(c.sources, ['a', 'b*', '["x"]']);
  const j = only('ADD ["a b", "/c d/"]', 'ADD');
  assert.deepEqual([j.sources, j.dest, j.json], [['a b'], '/c d/', true]);
  fails('FROM scratch\nCOPY onlyone\n', /COPY requires at least two arguments/);
  fails('FROM scratch\nCOPY --form=x a b\n', /Dockerfile:2:1: unknown flag: --form/);
  fails('FROM scratch\nRUN --network=none --network=host true\n', /--network given more than once/);
});

test('the other instructions', () => {
  assert.deepEqual(only('EXPOSE 80/tcp 53/udp', 'EXPOSE').words, ['80/tcp', '53/udp']);
  assert.deepEqual(only('VOLUME ["/data", "/logs"]', 'VOLUME').words, ['/data', '/logs']);
  assert.deepEqual(only('VOLUME /a /b', 'VOLUME').words, ['/a', '/b']);
  assert.equal(only('USER app:app', 'USER').word, 'app:app');
  assert.equal(only('WORKDIR /srv/$NAME', 'WORKDIR').word, '/srv/$NAME');
  assert.equal(only('STOPSIGNAL SIGTERM', 'STOPSIGNAL').word, 'SIGTERM');
  assert.deepEqual(only('ARG A B=2', 'ARG').args, [{ key: 'A' }, { key: 'B', value: '2' }]);
  const hc = only('HEALTHCHECK --interval=5s --retries=3 CMD wget -q -O- http://localhost/', 'HEALTHCHECK');
  assert.equal(hc.none, false);
  assert.deepEqual(hc.command, { json: false, shell: 'wget -q -O- http://localhost/' });
  assert.equal(flagValue(hc, 'interval'), '5s');
  assert.equal(only('HEALTHCHECK NONE', 'HEALTHCHECK').none, true);
  const ob = only('ONBUILD RUN echo triggered', 'ONBUILD');
  assert.equal(ob.trigger, 'RUN echo triggered');
  assert.equal(ob.instruction.kind, 'RUN');
  fails('FROM scratch\nONBUILD FROM x\n', /FROM is not allowed as an ONBUILD trigger/);
  fails('FROM scratch\nHEALTHCHECK wget x\n', /HEALTHCHECK takes NONE or CMD/);
  fails('FROM scratch\nUSER a b\n', /USER requires exactly one argument/);
});

test('malformed files name file, line and column', () => {
  fails('FROM scratch\n  FROBNICATE x\n', /^Dockerfile:2:3: unknown instruction: FROBNICATE$/);
  fails('RUN true\n', /Dockerfile:1:1: no FROM before RUN/);
  fails('# only a comment\n', /has no FROM/);
  fails('FROM a AS x\nFROM b AS X\n', /Dockerfile:2:1: duplicate stage name "x"/);
  fails('FROM a AS 1x\n', /invalid stage name "1x"/);
  fails('FROM a b\n', /FROM takes an image/);
  assert.throws(() => parseDockerfile('FROM scratch\nBAD\n', 'sub/Dockerfile.dev'), (e: Error) => /^sub\/Dockerfile\.dev:2:1: unknown instruction: BAD$/.test(e.message));
});

test('instruction names are case-insensitive and CRLF line ends are accepted', () => {
  const df = parseDockerfile('from scratch\r\nrun echo hi\r\nCmd ["x"]\r\n');
  assert.deepEqual(df.stages[0].instructions.map((i) => i.kind), ['RUN', 'CMD']);
});
