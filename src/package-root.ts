// Where the package's own files are. This module is compiled to dist/src/, and the bundled CLI (dist/src/volmerge-bundle.cjs)
// lives there too, so one relative path serves both: modules deeper in dist/src/ must ask here, not count '../' themselves.

/** The package root (the folder of package.json and schemas/), as a file: URL ending in '/'. */
export const PACKAGE_ROOT = new URL('../../', import.meta.url);
