// Validates JSON against the schemas in schemas/: compiled once, on first use of each.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { VolmergeError } from './errors.js';

/** The folder of JSON Schemas shipped with the package (dist/src/ -> ../../schemas). */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));

let ajv: Ajv | undefined;

function loadAjv(): Ajv {
  if (ajv) return ajv;
  const instance = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
  for (const file of readdirSync(SCHEMA_DIR)) {
    if (file.endsWith('.schema.json')) instance.addSchema(JSON.parse(readFileSync(SCHEMA_DIR + file, 'utf8')), file);
  }
  ajv = instance;
  return instance;
}

/** The compiled validator of one schema file, such as 'qemu-img-info.schema.json'. */
export function validatorFor<T>(schemaFile: string): ValidateFunction<T> {
  const validate = loadAjv().getSchema<T>(schemaFile);
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
