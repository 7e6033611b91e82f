// @ts-check
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------
// Do not relax these rules. The import direction below is the architecture of
// SYSTEM.md: a folder imports only folders above it in LAYERS, front doors
// never import one another, daemon/ is imported by nothing and cli/ talks to
// the engine only through the native API client. To break a rule, change the
// list in docs/architecture.md and here first.
// ---------------------------------------------------------------------------
const LAYERS = [
  'core', 'content', 'metadata', 'distribution', 'snapshots', 'images',
  'network', 'runtime/oci', 'runtime/tasks', 'runtime/volumes', 'runtime/sandboxes', 'runtime/containers', 'build', 'api/http', 'api/native', 'api/cri', 'api/docker', 'daemon', 'cli',
];
const FRONT_DOORS = new Set(['api/native', 'api/cri', 'api/docker']);
// Pods and containers share the spec builder and the tasks below them and
// never reach into each other: a CRI container joins its sandbox through the
// front door, which holds both services.
const SIBLINGS = new Set(['runtime/sandboxes', 'runtime/containers']);
const SRC = path.resolve(import.meta.dirname, 'src');

/** @param {string} file */
function layerOf(file) {
  const rel = path.relative(SRC, file);
  if (rel.startsWith('..')) return undefined;
  const parts = rel.split(path.sep);
  return parts[0] === 'api' || parts[0] === 'runtime' ? `${parts[0]}/${parts[1]}` : parts[0];
}

/** @param {string} from @param {string} to @param {string} target */
function importAllowed(from, to, target) {
  if (from === to) return true;
  if (to === 'daemon') return false;
  if (from === 'daemon') return true;
  if (from === 'cli') return to === 'core' || (to === 'api/native' && /client/.test(path.basename(target)));
  if (FRONT_DOORS.has(from) && FRONT_DOORS.has(to)) return false;
  if (SIBLINGS.has(from) && SIBLINGS.has(to)) return false;
  const fi = LAYERS.indexOf(from);
  const ti = LAYERS.indexOf(to);
  return ti >= 0 && fi >= 0 && ti < fi;
}

// ---------------------------------------------------------------------------
// No import circles in src/, type-only imports included: a service's parts
// depend on the types below them (their room's types.ts), never on the
// service that imports them. The graph of every file under the root is built
// once per process, from the files on disk (the rule sees one file at a time;
// a circle spans several), so an editor's long-lived server keeps the graph
// of its start. Every import that lies on a circle is reported with the
// files of one circle through it.
// ---------------------------------------------------------------------------

/** @param {string} from @param {string} spec @param {Set<string>} files */
function resolveImport(from, spec, files) {
  const base = path.resolve(path.dirname(from), spec);
  return [base, `${base}.ts`, path.join(base, 'index.ts')].find((f) => files.has(f));
}

/**
 * The import graph of the .ts files under `root`: each file's imports of
 * other files there (static, type-only, re-exports, dynamic), and its
 * strongly connected component (files that reach one another, a circle).
 * @param {string} root
 */
export function importGraph(root) {
  const files = new Set(
    /** @type {string[]} */ (fs.readdirSync(root, { recursive: true, encoding: 'utf8' }))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
      .map((f) => path.join(root, f)),
  );
  /** @type {Map<string, string[]>} */
  const edges = new Map();
  for (const file of [...files].sort()) {
    const found = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true).importedFiles;
    const targets = found.filter((i) => i.fileName.startsWith('.')).map((i) => resolveImport(file, i.fileName, files));
    edges.set(file, [...new Set(targets.filter((t) => t !== undefined))]);
  }
  // Tarjan's algorithm, iterative so a deep chain cannot overflow the stack.
  /** @type {Map<string, number>} */ const index = new Map();
  /** @type {Map<string, number>} */ const low = new Map();
  /** @type {Map<string, number>} */ const component = new Map();
  /** @type {string[]} */ const stack = [];
  const onStack = new Set();
  let next = 0;
  for (const start of edges.keys()) {
    if (index.has(start)) continue;
    /** @type {{ v: string; i: number }[]} */
    const work = [{ v: start, i: 0 }];
    index.set(start, next); low.set(start, next++); stack.push(start); onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const out = /** @type {string[]} */ (edges.get(top.v));
      if (top.i < out.length) {
        const w = out[top.i++];
        if (!index.has(w)) {
          index.set(w, next); low.set(w, next++); stack.push(w); onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(/** @type {number} */ (low.get(top.v)), /** @type {number} */ (index.get(w))));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(/** @type {number} */ (low.get(parent)), /** @type {number} */ (low.get(top.v))));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const id = /** @type {number} */ (index.get(top.v));
        let w;
        do {
          w = /** @type {string} */ (stack.pop());
          onStack.delete(w);
          component.set(w, id);
        } while (w !== top.v);
      }
    }
  }
  return { files, edges, component };
}

/**
 * The shortest way back from `to` to `from` inside their component, as the
 * circle `from -> to -> ... -> from`.
 * @param {ReturnType<typeof importGraph>} g @param {string} from @param {string} to
 */
function circleThrough(g, from, to) {
  const comp = g.component.get(from);
  /** @type {Map<string, string>} */
  const prev = new Map([[to, to]]);
  const queue = [to];
  while (queue.length > 0 && !prev.has(from)) {
    const v = /** @type {string} */ (queue.shift());
    for (const w of /** @type {string[]} */ (g.edges.get(v))) {
      if (prev.has(w) || g.component.get(w) !== comp) continue;
      prev.set(w, v);
      queue.push(w);
    }
  }
  const back = [from];
  for (let v = from; v !== to; v = /** @type {string} */ (prev.get(v))) back.push(/** @type {string} */ (prev.get(v)));
  return [from, ...back.reverse()];
}

/**
 * Every circle under `root`, each as its files (sorted): what the rule
 * reports, for a test to check.
 * @param {string} root
 */
export function importCircles(root) {
  const g = importGraph(root);
  /** @type {Map<number, string[]>} */
  const byComponent = new Map();
  for (const [file, id] of g.component) byComponent.set(id, [...(byComponent.get(id) ?? []), file]);
  return [...byComponent.values()]
    .filter((files) => files.length > 1 || /** @type {string[]} */ (g.edges.get(files[0])).includes(files[0]))
    .map((files) => files.sort());
}

/** @type {Map<string, ReturnType<typeof importGraph>>} */
const graphs = new Map();

const noImportCycle = {
  meta: {
    type: 'problem',
    schema: [{ type: 'object', properties: { root: { type: 'string' } }, additionalProperties: false }],
  },
  /** @param {any} context */
  create(context) {
    const root = path.resolve(context.options[0]?.root ?? SRC);
    const file = context.filename;
    if (path.relative(root, file).startsWith('..')) return {};
    let g = graphs.get(root);
    if (!g) graphs.set(root, (g = importGraph(root)));
    const graph = g;
    const comp = graph.component.get(file);
    if (comp === undefined) return {};
    /** @param {any} node @param {any} source */
    function check(node, source) {
      const spec = source && source.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = resolveImport(file, spec, graph.files);
      if (!target || graph.component.get(target) !== comp) return;
      const names = circleThrough(graph, file, target).map((f) => path.relative(path.dirname(root), f));
      context.report({
        node,
        message: `import circle: ${names.join(' -> ')}; move what they share below them (the room's types.ts, see docs/architecture.md, "Layers")`,
      });
    }
    /** @param {any} node */
    const bySource = (node) => check(node, node.source);
    return {
      ImportDeclaration: bySource,
      ExportNamedDeclaration: bySource,
      ExportAllDeclaration: bySource,
      ImportExpression: bySource,
      /** @param {any} node */
      TSImportType: (node) => check(node, node.argument?.literal ?? node.source),
    };
  },
};

export const layering = {
  rules: {
    'no-import-cycle': noImportCycle,
    'import-direction': {
      meta: { type: 'problem', schema: [] },
      /** @param {any} context */
      create(context) {
        const file = context.filename;
        const from = layerOf(file);
        /** @param {any} node */
        function check(node) {
          const spec = node.source && node.source.value;
          if (typeof spec !== 'string' || !spec.startsWith('.') || !from) return;
          const target = path.resolve(path.dirname(file), spec);
          const to = layerOf(target);
          if (!to) return;
          if (!importAllowed(from, to, target)) {
            context.report({ node, message: `src/${from} may not import src/${to} (see docs/architecture.md, "Layers")` });
          }
        }
        return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
      },
    },
  },
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'native/**', 'dist/**', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { berth: layering },
    rules: {
      'berth/import-direction': 'error',
      'berth/no-import-cycle': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'enums are not erasable syntax; use a const object' }],
    },
  },
  {
    // berthd runs all of src/ (the CLI's commands too): ICU's collation and
    // locale data cost it MiB of resident memory from their first use on, for
    // orders and formats that docker and containerd do not use either.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error', { name: 'Intl', message: 'Intl loads ICU data into berthd; format and order without a locale' }],
      'no-restricted-properties': [
        'error',
        ...['localeCompare', 'toLocaleString', 'toLocaleDateString', 'toLocaleTimeString', 'toLocaleUpperCase', 'toLocaleLowerCase'].map((property) => ({
          property,
          message: 'loads ICU data into berthd; use core/order.ts byCodeUnit or a locale-free format',
        })),
      ],
    },
  },
);
