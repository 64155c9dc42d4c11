// Bundles the compiled CLI (dist/src/cli/main.js and everything it imports, execa, yargs and the rest included) into
// one CommonJS file, dist/src/volmerge-bundle.cjs, and writes V8's code cache of it and of the compiled schema
// validators (src/bundle-loader.cts): node then reads one file and compiles nothing, instead of loading about 300 ES
// modules (figures in README "Performance"). dist/src/volmerge.cjs, the bin, runs it. CommonJS because node starts an
// ES module entry about 20 ms later. The bundle sits beside dist/src/package-root.js, so paths to package files stay
// right. winston and ajv stay outside: they are loaded at run time only when needed.
import { build } from 'esbuild';
import { chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WARM_CACHE_ENV, writeCodeCache } from '../src/bundle-loader.cjs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Plugin } from 'esbuild';

const BUNDLE = fileURLToPath(new URL('../src/volmerge-bundle.cjs', import.meta.url));
const ENTRY = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const BIN = fileURLToPath(new URL('../src/volmerge.cjs', import.meta.url));
/** The compiled schema validators (src/schema-compile.ts), one module per schema, each loaded on first use. */
const VALIDATORS = fileURLToPath(new URL('../src/schema-validators/', import.meta.url));

/**
 * yargs' ES module build takes cliui's ES module entry, whose stand-in for wrap-ansi cuts words in two at the line's end
 * (`volmerge merge --help` printed "r\nebase"); the CommonJS entry, which yargs' own CommonJS build uses, wraps between words.
 */
const cliuiWrappingWords: Plugin = {
  name: 'cliui-wrapping-words',
  setup(bundler) {
    const fromYargs = createRequire(createRequire(import.meta.url).resolve('yargs'));
    bundler.onResolve({ filter: /^cliui$/ }, () => ({ path: fromYargs.resolve('cliui') }));
  },
};

await build({
  entryPoints: [ENTRY],
  outfile: BUNDLE,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['winston', 'ajv'],
  // The sources are ES modules: their import.meta.url becomes the bundle's own file URL.
  define: { 'import.meta.url': 'volmergeBundleUrl' },
  banner: { js: "const volmergeBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  // import() becomes require(): the bundle runs in a vm.Script, which has no loader for import().
  supported: { 'dynamic-import': false },
  // Whitespace and syntax only: V8 parses a smaller file faster (README "Performance"), and names stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  logLevel: 'warning',
  plugins: [cliuiWrappingWords],
});
for (const file of await readdir(VALIDATORS)) if (file.endsWith('.cjs')) writeCodeCache(join(VALIDATORS, file));
await chmod(BIN, 0o755);
await warmUp();

/**
 * The bundle's code cache, made by one run of the CLI (a merge of volumes that do not exist, refused before anything is
 * touched): it holds what that run compiled (start-up, argument parsing, the merge command's first steps), not every
 * function of the bundle, which V8 reads back faster than the whole bundle compiled eagerly (README "Performance").
 */
async function warmUp(): Promise<void> {
  const argv = [BIN, 'merge', '--top', '/nonexistent/volmerge-warm-up-top', '--base', '/nonexistent/volmerge-warm-up-base', '--json'];
  const ran = spawnSync(process.execPath, argv, { env: { ...process.env, [WARM_CACHE_ENV]: '1' }, stdio: 'ignore' });
  if (ran.error) throw ran.error;
}
