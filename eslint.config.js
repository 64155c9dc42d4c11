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
  ['steps/'],
  ['jobs/'],
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
    },
  },
);
