// Three lint rules over the import graph of src/: `layers` refuses an import of a higher layer (the layers are given in
// eslint.config.js, lowest first), `no-cycle` refuses an import that leads back to the importing file, and `apart`
// refuses an import between folders kept apart (the three ways into a merge). Imports are
// read from the source text (import/export ... from, import('...')), type-only ones included; "./x.js" means "./x.ts".
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';

const IMPORT_PATTERN = /(?:^|[;\s])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** The source file a relative specifier names, or undefined (a package, or a file that does not exist). */
function resolveSpecifier(fromFile, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const target = resolve(dirname(fromFile), specifier);
  for (const candidate of [target.replace(/\.js$/, '.ts'), target.replace(/\.cjs$/, '.cts'), target]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const importCache = new Map();

/** The project files a file imports, read from its text (cached for the lint run). */
function importsOf(file) {
  let found = importCache.get(file);
  if (found) return found;
  found = [];
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = '';
  }
  for (const match of text.matchAll(IMPORT_PATTERN)) {
    const target = resolveSpecifier(file, match[1] ?? match[2] ?? match[3]);
    if (target) found.push(target);
  }
  importCache.set(file, found);
  return found;
}

/** The path of a file from src/, with '/' separators, or undefined outside src/. */
function fromSrc(file, root) {
  const path = relative(resolve(root, 'src'), file);
  return path.startsWith('..') ? undefined : path.split(sep).join('/');
}

/** The rank of a src/ path among the layers (each a list of prefixes), or undefined when no layer names it. */
function rankOf(path, layers) {
  for (let rank = 0; rank < layers.length; rank += 1) {
    if (layers[rank].some((prefix) => path === prefix || path.startsWith(prefix))) return rank;
  }
  return undefined;
}

/** The source of each import or export statement of the file being linted. */
function onImports(context, check) {
  const visit = (node) => {
    const source = node.source;
    if (source && source.type === 'Literal' && typeof source.value === 'string') check(node, source.value);
  };
  return { ImportDeclaration: visit, ExportNamedDeclaration: visit, ExportAllDeclaration: visit, ImportExpression: visit };
}

const layers = {
  meta: { type: 'problem', schema: [{ type: 'object', properties: { layers: { type: 'array' } }, additionalProperties: false }] },
  create(context) {
    const file = context.filename;
    const root = context.cwd;
    const order = context.options[0]?.layers ?? [];
    const path = fromSrc(file, root);
    if (path === undefined) return {};
    const own = rankOf(path, order);
    if (own === undefined) {
      return { Program: (node) => context.report({ node, message: `src/${path} is in no layer: add it to the layers in eslint.config.js` }) };
    }
    return onImports(context, (node, specifier) => {
      const target = resolveSpecifier(file, specifier);
      const targetPath = target && fromSrc(target, root);
      if (targetPath === undefined) return;
      const rank = rankOf(targetPath, order);
      if (rank !== undefined && rank > own) {
        context.report({ node, message: `src/${path} (layer ${own}) imports src/${targetPath} (layer ${rank}): a lower layer never imports a higher one` });
      }
    });
  },
};

/** The folder of `groups` (lists of folder prefixes kept apart) that a src/ path is in: [group, folder], or undefined. */
function apartFolderOf(path, groups) {
  for (const group of groups) {
    const folder = group.find((prefix) => path.startsWith(prefix));
    if (folder) return [group, folder];
  }
  return undefined;
}

/** Folders that never import each other (the ways into a merge), however their layers rank them. */
const apart = {
  meta: { type: 'problem', schema: [{ type: 'object', properties: { groups: { type: 'array' } }, additionalProperties: false }] },
  create(context) {
    const file = context.filename;
    const root = context.cwd;
    const groups = context.options[0]?.groups ?? [];
    const path = fromSrc(file, root);
    const own = path === undefined ? undefined : apartFolderOf(path, groups);
    if (!own) return {};
    return onImports(context, (node, specifier) => {
      const target = resolveSpecifier(file, specifier);
      const targetPath = target && fromSrc(target, root);
      if (targetPath === undefined) return;
      const other = own[0].find((prefix) => prefix !== own[1] && targetPath.startsWith(prefix));
      if (other) {
        context.report({ node, message: `src/${path} imports src/${targetPath}: ${own[1]} and ${other} are kept apart; move what both need below them` });
      }
    });
  },
};

/** A path of imports from `from` back to `to`, or undefined. */
function pathBack(from, to, seen) {
  if (from === to) return [to];
  if (seen.has(from)) return undefined;
  seen.add(from);
  for (const next of importsOf(from)) {
    const rest = pathBack(next, to, seen);
    if (rest) return [from, ...rest];
  }
  return undefined;
}

const noCycle = {
  meta: { type: 'problem', schema: [] },
  create(context) {
    const file = context.filename;
    const root = context.cwd;
    if (fromSrc(file, root) === undefined) return {};
    return onImports(context, (node, specifier) => {
      const target = resolveSpecifier(file, specifier);
      if (!target || fromSrc(target, root) === undefined) return;
      const cycle = pathBack(target, file, new Set());
      if (cycle) {
        const names = [file, ...cycle].map((f) => `src/${fromSrc(f, root)}`).join(' -> ');
        context.report({ node, message: `import cycle: ${names}` });
      }
    });
  },
};

/** The local plugin. */
export default { rules: { layers, 'no-cycle': noCycle, apart } };
