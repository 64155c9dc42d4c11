// Validates JSON against the schemas in schemas/. The validators are compiled at build time (src/schema-compile.ts) and
// used only while the schema files still read exactly as they did then; otherwise ajv compiles them here, on first use.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { requireWithCodeCache } from './bundle-loader.cjs';
import { VolmergeError } from './errors.js';
import { AJV_OPTIONS, readSchemaTexts, SCHEMA_DIR } from './schema-files.js';

export { SCHEMA_DIR } from './schema-files.js';

const require = createRequire(import.meta.url);

/** The build's compiled validators by schema file name, plus the schema texts they were compiled from. */
export type CompiledModule = Record<string, ValidateFunction> & { __sources?: Record<string, string> };

/** Where the validators come from in this process, decided once on first use. */
type Source = { kind: 'compiled'; validators: CompiledModule; files: Set<string> } | { kind: 'runtime'; ajv: Ajv; files: Set<string> };

let loaded: Source | undefined;

/** Whether the compiled module was made from exactly these schema texts (same files, same bytes). */
export function compiledMatches(compiled: CompiledModule, texts: Record<string, string>): boolean {
  const made = compiled.__sources;
  if (!made) return false;
  const files = Object.keys(texts);
  return files.length === Object.keys(made).length && files.every((file) => made[file] === texts[file] && typeof compiled[file] === 'function');
}

/** The build's validators when they match the schema files; ajv compiling the files otherwise. */
function loadSource(): Source {
  if (loaded) return loaded;
  const texts = readSchemaTexts();
  const files = new Set(Object.keys(texts));
  let compiled: CompiledModule | undefined;
  try {
    compiled = requireWithCodeCache(fileURLToPath(new URL('./schema-validators.cjs', import.meta.url))) as CompiledModule;
  } catch {
    compiled = undefined;
  }
  if (compiled && compiledMatches(compiled, texts)) {
    loaded = { kind: 'compiled', validators: compiled, files };
    return loaded;
  }
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  const ajv = new AjvClass(AJV_OPTIONS);
  for (const [file, text] of Object.entries(texts)) ajv.addSchema(JSON.parse(text) as object, file);
  loaded = { kind: 'runtime', ajv, files };
  return loaded;
}

/** 'compiled' when the build's validators are in use, 'runtime' when ajv compiles the schemas in this process. */
export function validatorSource(): 'compiled' | 'runtime' {
  return loadSource().kind;
}

/** The validator of one schema file, such as 'qemu-img-info.schema.json'. */
export function validatorFor<T>(schemaFile: string): ValidateFunction<T> {
  const from = loadSource();
  const validate = !from.files.has(schemaFile)
    ? undefined
    : from.kind === 'compiled'
      ? (from.validators[schemaFile] as ValidateFunction<T>)
      : from.ajv.getSchema<T>(schemaFile);
  if (!validate) throw new Error(`no schema ${schemaFile} in ${SCHEMA_DIR}`);
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
