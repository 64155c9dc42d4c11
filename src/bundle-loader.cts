// Runs a CommonJS file of the build (the bundled CLI, dist/src/volmerge-bundle.cjs, and the compiled schema
// validators) from V8's code cache, which the build writes beside it: node then neither parses the file nor compiles
// its functions on each run (about 40 ms of every command for the bundle, README "Performance"). A cache is used only
// when it was made from exactly these bytes (SHA-256), else the file is compiled as usual; V8 itself also refuses a
// cache from another node version or other V8 flags.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** How the last compile used the code cache: accepted by V8, refused by V8, made from other bytes, or missing. */
export type CodeCacheUse = 'accepted' | 'rejected' | 'stale' | 'missing';

/** A file compiled as a CommonJS module function, and whether the code cache served. */
export interface CompiledModule {
  /** Runs the file as the module at its path (its require, __filename and __dirname are its own); returns its exports. */
  run(): unknown;
  cache: CodeCacheUse;
}

const DIGEST_BYTES = 32;

/** Set to 1 in the build's warm-up run: each file compiled from here gets the code cache of the functions the run used. */
export const WARM_CACHE_ENV = 'VOLMERGE_WRITE_CODE_CACHE';

/** Where the code cache of a file is kept: beside it. */
export function codeCachePath(file: string): string {
  return `${file}.code-cache`;
}

/** A file's source inside the CommonJS module wrapper, so that one Script yields the module function. */
function wrap(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${source.startsWith('#!') ? `//${source}` : source}\n})`;
}

/** SHA-256 of a file's bytes: its code cache starts with it. */
function digestOf(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** The cache's V8 data when its digest matches the file's bytes. */
function readCodeCache(file: string, bytes: Buffer): { data?: Buffer; use: CodeCacheUse } {
  let cache: Buffer;
  try {
    cache = readFileSync(codeCachePath(file));
  } catch {
    return { use: 'missing' };
  }
  if (cache.length <= DIGEST_BYTES || !cache.subarray(0, DIGEST_BYTES).equals(digestOf(bytes))) return { use: 'stale' };
  return { data: cache.subarray(DIGEST_BYTES), use: 'accepted' };
}

/** Compiles a CommonJS file, from its code cache when that was made from these bytes and V8 accepts it. */
export function compileWithCodeCache(file: string): CompiledModule {
  const bytes = readFileSync(file);
  const cached = readCodeCache(file, bytes);
  const script = new Script(wrap(bytes.toString('utf8')), { filename: file, ...(cached.data ? { cachedData: cached.data } : {}) });
  const cache: CodeCacheUse = cached.data && script.cachedDataRejected ? 'rejected' : cached.use;
  // The build's warm-up run (scripts/bundle.ts) asks for the cache of what this run compiled, written as it exits.
  if (process.env[WARM_CACHE_ENV] === '1') process.once('exit', () => writeFileSync(codeCachePath(file), Buffer.concat([digestOf(bytes), script.createCachedData()])));
  return {
    cache,
    run() {
      const moduleFunction = script.runInThisContext() as (...args: unknown[]) => void;
      const module = { exports: {} as unknown };
      moduleFunction.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
      return module.exports;
    },
  };
}

/** require() for a CommonJS file of the build with a code cache: its exports (not shared with require's own cache). */
export function requireWithCodeCache(file: string): unknown {
  return compileWithCodeCache(file).run();
}

/**
 * Writes a file's code cache (at build time): every function compiled eagerly, so that no run compiles any; the
 * file's digest first. Only a node of the same version, run with the same V8 flags, will accept it.
 */
export function writeCodeCache(file: string): void {
  // Loaded here only: a run never writes a cache, and node:v8 costs a few ms of every command's start-up.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { setFlagsFromString } = require('node:v8') as typeof import('node:v8');
  const bytes = readFileSync(file);
  setFlagsFromString('--no-lazy');
  let script: Script;
  try {
    script = new Script(wrap(bytes.toString('utf8')), { filename: file });
  } finally {
    // Back to the default before the cache is made: V8 stamps it with the flags in force, and runs use the default.
    setFlagsFromString('--lazy');
  }
  writeFileSync(codeCachePath(file), Buffer.concat([digestOf(bytes), script.createCachedData()]));
}
