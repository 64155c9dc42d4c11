// Validates JSON against the schemas in schemas/. Each schema's validator is compiled at build time into a module of its
// own (src/schema-compile.ts) and loaded on first use, only while the schema files it was made from still read exactly
// as they did then; otherwise ajv compiles every schema here, once.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { requireWithCodeCache } from './bundle-loader.cjs';
import { VolmergeError } from './errors.js';
import { AJV_OPTIONS, readSchemaTexts, SCHEMA_DIR } from './schema-files.js';

export { SCHEMA_DIR } from './schema-files.js';

const require = createRequire(import.meta.url);

/** One compiled validator module: the validator under its schema file's name, plus the schema texts it was made from. */
export type CompiledModule = Record<string, ValidateFunction> & { __sources?: Record<string, string> };

/** Validators in use, by schema file. */
const validators = new Map<string, ValidateFunction>();
/** ajv compiling schemas/ at run time, once a compiled module did not match (or was missing). */
let runtime: Ajv | undefined;

/** Whether a compiled module was made from exactly these schema texts (every file it used, byte for byte). */
export function compiledMatches(compiled: CompiledModule, texts: Record<string, string>): boolean {
  const made = compiled.__sources;
  if (!made || Object.keys(made).length === 0) return false;
  return Object.entries(made).every(([file, text]) => texts[file] === text);
}

/** The texts of the schema files a module names, read now (a file that is gone reads as undefined). */
function currentTexts(files: readonly string[]): Record<string, string> {
  const texts: Record<string, string> = {};
  for (const file of files) {
    try {
      texts[file] = readFileSync(SCHEMA_DIR + file, 'utf8');
    } catch {
      // Missing: the module does not match.
    }
  }
  return texts;
}

/** The build's validator of one schema when it matches the schema files; undefined otherwise. */
function compiledValidator<T>(schemaFile: string): ValidateFunction<T> | undefined {
  if (runtime) return undefined;
  let compiled: CompiledModule;
  try {
    const module = fileURLToPath(new URL(`./schema-validators/${schemaFile.replace(/\.json$/, '')}.cjs`, import.meta.url));
    compiled = requireWithCodeCache(module) as CompiledModule;
  } catch {
    return undefined;
  }
  const validate = compiled[schemaFile];
  if (typeof validate !== 'function' || !compiledMatches(compiled, currentTexts(Object.keys(compiled.__sources ?? {})))) return undefined;
  return validate as ValidateFunction<T>;
}

/** ajv with every schema file added (made once). */
function runtimeAjv(): Ajv {
  if (runtime) return runtime;
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  const ajv = new AjvClass(AJV_OPTIONS);
  for (const [file, text] of Object.entries(readSchemaTexts())) ajv.addSchema(JSON.parse(text) as object, file);
  runtime = ajv;
  return ajv;
}

/** 'compiled' when the build's validators are in use, 'runtime' when ajv compiles the schemas in this process. */
export function validatorSource(): 'compiled' | 'runtime' {
  validatorFor('journal.schema.json');
  return runtime ? 'runtime' : 'compiled';
}

/** The validator of one schema file, such as 'qemu-img-info.schema.json'. */
export function validatorFor<T>(schemaFile: string): ValidateFunction<T> {
  const known = validators.get(schemaFile);
  if (known) return known as ValidateFunction<T>;
  const validate = compiledValidator<T>(schemaFile) ?? runtimeAjv().getSchema<T>(schemaFile);
  if (!validate) throw new Error(`no schema ${schemaFile} in ${SCHEMA_DIR}`);
  validators.set(schemaFile, validate);
  return validate;
}

/** Human-readable summary of ajv's errors. */
export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`).join('; ');
}

/** Checks data against a schema and returns it typed; throws a 'bad-output' error naming the source otherwise. */
export function checkAgainst<T>(schemaFile: string, data: unknown, source: string): T {
  const validate = validatorFor<T>(schemaFile);
  if (!validate(data)) {
    throw new VolmergeError('bad-output', `${source} printed JSON that does not match ${schemaFile}: ${describeErrors(validate.errors)}`);
  }
  return data;
}

/** Parses JSON text and checks it against a schema; unparsable text is a 'bad-output' error naming the source. */
export function parseAgainst<T>(schemaFile: string, text: string, source: string): T {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new VolmergeError('bad-output', `${source} printed output that is not JSON: ${text.slice(0, 200)}`);
  }
  return checkAgainst<T>(schemaFile, data, source);
}
