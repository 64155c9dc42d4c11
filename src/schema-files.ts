// The schema files and the ajv options that both the build-time compiler and the runtime fallback use (one truth).
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from './package-root.js';

/** The folder of JSON Schemas shipped with the package. */
export const SCHEMA_DIR = fileURLToPath(new URL('schemas/', PACKAGE_ROOT));

/** ajv's options: strict, first error only, union types allowed. */
export const AJV_OPTIONS = { allErrors: false, strict: true, allowUnionTypes: true } as const;

/** Every schemas/*.schema.json file's text, by file name, in name order. */
export function readSchemaTexts(): Record<string, string> {
  const texts: Record<string, string> = {};
  for (const file of readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json')).sort()) {
    texts[file] = readFileSync(SCHEMA_DIR + file, 'utf8');
  }
  return texts;
}

/** A schema file and every schema file it refers to ("$ref": "other.schema.json..."), recursively, in name order. */
export function referencedSchemas(texts: Record<string, string>, file: string): string[] {
  const found = new Set<string>();
  const visit = (name: string): void => {
    if (found.has(name) || texts[name] === undefined) return;
    found.add(name);
    for (const match of (texts[name] ?? '').matchAll(/"\$ref"\s*:\s*"([^"#]+\.schema\.json)/g)) visit(match[1] ?? '');
  };
  visit(file);
  return [...found].sort();
}
