// Reads recorded tool outputs from lvm-fixtures/ for unit tests.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The text of lvm-fixtures/NAME (dist/test/unit -> ../../../lvm-fixtures). */
export function fixture(name: string): string {
  return readFileSync(fileURLToPath(new URL(`../../../lvm-fixtures/${name}`, import.meta.url)), 'utf8');
}

/** The parsed JSON of lvm-fixtures/NAME. */
export function jsonFixture<T = unknown>(name: string): T {
  return JSON.parse(fixture(name)) as T;
}
