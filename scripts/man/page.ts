// The text of volmerge(1) as the build writes it: the yargs definitions walked and rendered, with the package's version.
import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import { renderManPage } from './roff.js';
import { walkProgram } from './walk.js';

/** Where the build writes the page; package.json's "man" names the same file. */
export const MAN_PAGE_PATH = 'dist/man/volmerge.1';

/** The man page's text, from the yargs definitions in src/cli and package.json's version and description. */
export async function manPageText(): Promise<string> {
  const pkg = JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string; description: string };
  return renderManPage(await walkProgram(), pkg.version, pkg.description);
}
