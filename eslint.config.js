// @ts-check
import path from 'node:path';
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
  'network', 'runtime/oci', 'runtime/tasks', 'runtime/volumes', 'runtime/sandboxes', 'runtime/containers', 'api/http', 'api/native', 'api/cri', 'api/docker', 'daemon', 'cli',
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

const layering = {
  rules: {
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
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'enums are not erasable syntax; use a const object' }],
    },
  },
);
