// Builds the man page volmerge(1) from the yargs definitions that --help prints (the last step of npm run build).
import { mkdirSync, writeFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../src/package-root.js';
import { MAN_PAGE_PATH, manPageText } from './man/page.js';

const target = new URL(MAN_PAGE_PATH, PACKAGE_ROOT);
const page = await manPageText();
mkdirSync(new URL('.', target), { recursive: true });
writeFileSync(target, page);
console.log(`man-page: ${MAN_PAGE_PATH} written (${page.split('\n').length} lines)`);
