// Reading the project's Markdown pages for the documentation tests: headings as GitHub anchors, and relative links.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../../src/package-root.js';

/** The repository's root folder (where README.md and docs/ are). */
export const REPO_ROOT = fileURLToPath(PACKAGE_ROOT);

/** A page's text, by its path from the repository root (e.g. docs/cli.md). */
export function readPage(path: string): string {
  return readFileSync(new URL(path, PACKAGE_ROOT), 'utf8');
}

/** README.md and every docs/*.md, as paths from the repository root. */
export function documentationPages(): string[] {
  const docs = readdirSync(new URL('docs/', PACKAGE_ROOT)).filter((name) => name.endsWith('.md'));
  return ['README.md', ...docs.sort().map((name) => `docs/${name}`)];
}

/** The lines of a page outside fenced code blocks (``` or ~~~), with their 1-based line numbers. */
export function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, index) => {
    const marker = /^\s*(```+|~~~+)/.exec(line)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    if (fence === undefined) out.push({ line: index + 1, text: line });
  });
  return out;
}

/** A heading's anchor as GitHub makes it: lower case, markup and punctuation dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  const plain = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*_]{1,2}([^`*_]+)[`*_]{1,2}/g, '$1')
    .trim()
    .toLowerCase();
  return plain.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The headings of a page (ATX style, outside code), each with its anchor (repeats get -1, -2, ... as on GitHub). */
export function headings(text: string): { level: number; title: string; anchor: string }[] {
  const seen = new Map<string, number>();
  const out: { level: number; title: string; anchor: string }[] = [];
  for (const { text: line } of proseLines(text)) {
    const match = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    const base = githubSlug(match[2]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.push({ level: match[1].length, title: match[2], anchor: count === 0 ? base : `${base}-${count}` });
  }
  return out;
}

/** The anchors a page's headings make. */
export function anchorsOf(text: string): Set<string> {
  return new Set(headings(text).map((h) => h.anchor));
}

/** Every Markdown link target of a page outside code (fenced blocks and `inline code`), with its line. */
export function linkTargets(text: string): { line: number; target: string }[] {
  const out: { line: number; target: string }[] = [];
  for (const { line, text: prose } of proseLines(text)) {
    const withoutCode = prose.replace(/`[^`]*`/g, '');
    for (const match of withoutCode.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      if (match[1]) out.push({ line, target: match[1] });
    }
  }
  return out;
}

/** The text under a heading (found by its anchor) up to the next heading of the same or a higher level. */
export function sectionOf(text: string, anchor: string): string {
  const lines = text.split('\n');
  const all = headings(text);
  const index = all.findIndex((h) => h.anchor === anchor);
  const heading = all[index];
  if (!heading) throw new Error(`no heading #${anchor}`);
  // Headings come in page order: find the lines of this one and of the next at its level or above, outside code.
  const headingLines = proseLines(text).filter((l) => /^#{1,6}\s/.test(l.text));
  const start = headingLines[index]?.line ?? 0;
  const next = all.findIndex((h, i) => i > index && h.level <= heading.level);
  const end = next === -1 ? lines.length : (headingLines[next]?.line ?? lines.length + 1) - 1;
  return lines.slice(start, end).join('\n');
}

/** The pipe tables of a text, each as its header cells and its rows' cells (code spans may hold escaped pipes). */
export function tables(text: string): { header: string[]; rows: string[][] }[] {
  const cells = (line: string): string[] =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
  const out: { header: string[]; rows: string[][] }[] = [];
  const lines = proseLines(text).map((l) => l.text);
  for (let i = 0; i + 1 < lines.length; i += 1) {
    if (!/^\s*\|/.test(lines[i] ?? '') || !/^\s*\|\s*:?-{3,}/.test(lines[i + 1] ?? '')) continue;
    const table = { header: cells(lines[i] ?? ''), rows: [] as string[][] };
    for (i += 2; i < lines.length && /^\s*\|/.test(lines[i] ?? ''); i += 1) table.rows.push(cells(lines[i] ?? ''));
    out.push(table);
  }
  return out;
}

/** The names in `code spans` of a table cell (a cell may name several: `uuid`, `domain`, `image`). */
export function codeNames(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
}
