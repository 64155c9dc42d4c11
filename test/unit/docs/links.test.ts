import { expect } from 'chai';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { anchorsOf, documentationPages, githubSlug, headings, linkTargets, readPage, REPO_ROOT } from '../../helpers/markdown.js';

/** Every broken relative link or anchor of one page, as "page:line: target (why)". */
function brokenLinks(page: string): string[] {
  const text = readPage(page);
  const broken: string[] = [];
  for (const { line, target } of linkTargets(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: and the like are not checked here
    const [pathPart = '', anchor] = target.split('#', 2) as [string, string | undefined];
    const file = pathPart === '' ? page : normalize(join(dirname(page), decodeURIComponent(pathPart)));
    const where = `${page}:${line}: ${target}`;
    if (relative(REPO_ROOT, join(REPO_ROOT, file)).startsWith('..')) {
      broken.push(`${where} (leaves the repository)`);
      continue;
    }
    if (!existsSync(join(REPO_ROOT, file))) {
      broken.push(`${where} (no file ${file})`);
      continue;
    }
    if (anchor === undefined) continue;
    if (statSync(join(REPO_ROOT, file)).isDirectory() || !file.endsWith('.md')) {
      broken.push(`${where} (an anchor into ${file}, which is not a Markdown page)`);
    } else if (!anchorsOf(readPage(file)).has(anchor)) {
      broken.push(`${where} (no heading #${anchor} in ${file})`);
    }
  }
  return broken;
}

describe('documentation: links and size', () => {
  const pages = documentationPages();

  it('finds the pages the README promises', () => {
    for (const page of ['docs/cli.md', 'docs/how-a-merge-works.md', 'docs/live-merge.md', 'docs/agent-api.md', 'docs/tls.md',
      'docs/clusters.md', 'docs/crash-safety.md', 'docs/performance.md', 'docs/testing.md', 'docs/architecture.md']) {
      expect(pages, page).to.include(page);
    }
  });

  for (const page of pages) {
    it(`${page}: every relative link and #anchor points to an existing file and heading`, () => {
      expect(brokenLinks(page)).to.deep.equal([]);
    });
  }

  it('README.md is the front door: at most 250 lines, and links every page of docs/', () => {
    const readme = readPage('README.md');
    expect(readme.trimEnd().split('\n').length).to.be.at.most(250);
    const linked = new Set(linkTargets(readme).map((l) => l.target.split('#')[0]));
    for (const page of pages.filter((p) => p.startsWith('docs/'))) expect([...linked], `README.md links ${page}`).to.include(page);
  });

  it('each page opens with one title and no heading repeats within it (anchors stay unambiguous)', () => {
    for (const page of pages) {
      const all = headings(readPage(page));
      expect(all[0]?.level, `${page} starts with a # title`).to.equal(1);
      expect(all.filter((h) => h.level === 1), `${page} has one # title`).to.have.length(1);
      const slugs = all.map((h) => githubSlug(h.title));
      expect(slugs.filter((slug, i) => slugs.indexOf(slug) !== i), `${page}: repeated headings`).to.deep.equal([]);
    }
  });

  it('makes anchors as GitHub does', () => {
    expect(githubSlug('Live merge: a chain that a running VM holds')).to.equal('live-merge-a-chain-that-a-running-vm-holds');
    expect(githubSlug('`SDM.merge`')).to.equal('sdmmerge');
    expect(githubSlug("The prune's daemon")).to.equal('the-prunes-daemon');
    expect(githubSlug('Finishing a merge: internal merges, removing top, shrinking base')).to.equal(
      'finishing-a-merge-internal-merges-removing-top-shrinking-base',
    );
    expect(headings('# A\n## B\n```\n## not a heading\n```\n## B\n').map((h) => h.anchor)).to.deep.equal(['a', 'b', 'b-1']);
  });
});
