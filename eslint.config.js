// Lint rules: typescript-eslint's recommended type-aware set over sources, tests and scripts, and two rules over
// src/'s import graph (eslint-rules/import-graph.js): no import cycle, and no import of a higher layer.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import importGraph from './eslint-rules/import-graph.js';

/** src/'s layers, lowest first: a file may import its own layer and the ones below, never one above. */
const LAYERS = [
  ['errors.ts', 'log.ts', 'config.ts', 'both.ts', 'schema.ts', 'schema-files.ts', 'schema-compile.ts', 'package-root.ts', 'bundle-loader.cts', 'os/'],
  ['qemu/'],
  ['storage/'],
  ['merge/', 'live/', 'libvirt/'],
  ['engine/'],
  // The step tables of the three ways into a merge, and their steps, over the one step engine; ways/shapes.ts names
  // which table a journal belongs to.
  ['ways/cold/steps/', 'ways/qmp/steps/', 'ways/libvirt/steps/', 'ways/shapes.ts'],
  // What every way's jobs share: the chain lock, preconditions, failures, interruptions, unfinished and stale journals.
  ['jobs/'],
  // Each way's job glue (plan, run, resume, orphaned jobs); the three folders never import each other.
  ['ways/cold/', 'ways/qmp/', 'ways/libvirt/'],
  // What picks the way into a merge, and what reads the jobs of every way: run-merge, recovery, status, clear-stale.
  ['host/'],
  ['agent/'],
  ['cli/'],
  ['volmerge.cts'],
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**/*.ts', 'src/**/*.cts'],
    plugins: { local: importGraph },
    rules: {
      'local/no-cycle': 'error',
      'local/layers': ['error', { layers: LAYERS }],
      'local/apart': ['error', { groups: [['ways/cold/', 'ways/qmp/', 'ways/libvirt/']] }],
    },
  },
);
