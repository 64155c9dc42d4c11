import { expect } from 'chai';
import { anchorsOf, readPage } from '../../helpers/markdown.js';

/**
 * Every heading of README.md as it was before it was split into docs/ (at 3bf56b6, 979 lines), and the page and heading
 * that hold its topic now. Nothing may be lost: each must still be there.
 */
const OLD_README_TOPICS: readonly { old: string; page: string; anchor: string }[] = [
  { old: 'volmerge (what it is and why)', page: 'README.md', anchor: 'why' },
  { old: 'Quick start', page: 'README.md', anchor: 'quick-start' },
  { old: 'The CLI', page: 'docs/cli.md', anchor: 'volmerge-merge' },
  { old: 'The CLI (error codes)', page: 'docs/cli.md', anchor: 'error-codes' },
  { old: 'How a merge works', page: 'docs/how-a-merge-works.md', anchor: 'the-steps' },
  { old: 'How a merge works (step 3, measure)', page: 'docs/how-a-merge-works.md', anchor: 'sizing-base' },
  { old: 'How a merge works (bitmaps, stderr checks)', page: 'docs/how-a-merge-works.md', anchor: 'bitmaps' },
  { old: 'Which chains: formats, layouts, headers', page: 'docs/how-a-merge-works.md', anchor: 'which-chains-formats-layouts-headers' },
  {
    old: 'Finishing a merge: internal merges, removing top, shrinking base',
    page: 'docs/how-a-merge-works.md',
    anchor: 'finishing-a-merge-internal-merges-removing-top-shrinking-base',
  },
  { old: 'Live merge: a chain that a running VM holds', page: 'docs/live-merge.md', anchor: 'live-merge-a-chain-that-a-running-vm-holds' },
  { old: 'Live merge (the agent: VM.merge)', page: 'docs/live-merge.md', anchor: 'through-the-agent-vmmerge' },
  { old: 'Layout (layers)', page: 'docs/architecture.md', anchor: 'layers' },
  { old: 'Layout (the build and the bundle)', page: 'docs/architecture.md', anchor: 'the-build' },
  { old: 'Real LVM: the LVM suite and the ENOSPC reproducer', page: 'docs/testing.md', anchor: 'the-lvm-suite-and-its-vm' },
  { old: 'Real LVM (the ENOSPC reproducer)', page: 'docs/testing.md', anchor: 'the-enospc-reproducer' },
  { old: 'Clusters: a shared volume group', page: 'docs/clusters.md', anchor: 'clusters-a-shared-volume-group' },
  { old: 'Clusters (what each host needs)', page: 'docs/clusters.md', anchor: 'what-each-host-needs' },
  { old: 'Clusters (when a host dies mid-merge)', page: 'docs/clusters.md', anchor: 'when-a-host-dies-mid-merge' },
  { old: 'Clusters (the test)', page: 'docs/testing.md', anchor: 'the-hosts-suite-two-hosts-on-one-shared-vg' },
  { old: 'The host agent', page: 'docs/agent-api.md', anchor: 'running-the-agent' },
  { old: 'Addressing volumes', page: 'docs/agent-api.md', anchor: 'addressing-volumes' },
  { old: 'Addressing volumes (generation)', page: 'docs/agent-api.md', anchor: 'generation' },
  { old: 'Methods', page: 'docs/agent-api.md', anchor: 'methods' },
  { old: 'Job events', page: 'docs/agent-api.md', anchor: 'job-events' },
  { old: 'Requests and errors', page: 'docs/agent-api.md', anchor: 'requests-and-errors' },
  { old: 'Requests and errors (the error table)', page: 'docs/agent-api.md', anchor: 'errors' },
  { old: 'The client commands', page: 'docs/cli.md', anchor: 'volmerge-jobs-and-volmerge-call' },
  { old: 'The client commands (completion)', page: 'docs/cli.md', anchor: 'volmerge-completion' },
  { old: 'The client commands (VOLMERGE_TEST_COMMIT_RATE)', page: 'docs/testing.md', anchor: 'test-only-switches' },
  { old: 'TLS set-up', page: 'docs/tls.md', anchor: 'making-the-certificates' },
  { old: 'The engine contract', page: 'docs/agent-api.md', anchor: 'the-engine-contract' },
  { old: 'Crash safety', page: 'docs/crash-safety.md', anchor: 'how-it-works' },
  { old: 'Crash safety (status, needs-attention)', page: 'docs/crash-safety.md', anchor: 'a-base-that-needs-attention' },
  { old: 'Crash safety (VOLMERGE_CRASH_AT)', page: 'docs/testing.md', anchor: 'test-only-switches' },
  { old: 'Performance', page: 'docs/performance.md', anchor: 'running-the-bench' },
  { old: 'Performance (the fixed cost and the live merge)', page: 'docs/performance.md', anchor: 'the-fixed-cost-and-the-live-merge' },
  { old: 'Performance (the last full run)', page: 'docs/performance.md', anchor: 'the-last-full-run' },
  { old: 'Performance (what took the fixed cost down)', page: 'docs/performance.md', anchor: 'what-took-the-fixed-cost-down' },
];

/** Facts of the old README that a reader searches for by name: each must still be written on its page. */
const OLD_README_FACTS: readonly { page: string; text: string }[] = [
  { page: 'docs/how-a-merge-works.md', text: 'CVE-2024-32498' },
  { page: 'docs/how-a-merge-works.md', text: 'qemu-img commit -p -t none -b BASE TOP' },
  { page: 'docs/clusters.md', text: 'lvmlockctl --info' },
  { page: 'docs/agent-api.md', text: 'SHA-1 name-based, version 5' },
  { page: 'docs/agent-api.md', text: 'vdsm\'s `AbortNotSupported` (80) is never sent' },
  { page: 'docs/tls.md', text: 'peer did not return a certificate' },
  // The merge's qemu-storage-daemon ran under `timeout --foreground` until it moved under setpriv (issue 23).
  { page: 'docs/crash-safety.md', text: 'setpriv --pdeathsig KILL' },
  { page: 'docs/testing.md', text: '| 14 | 1 | 0 | good ok, 14 other in-use |' },
  { page: 'docs/performance.md', text: 'cache.no-flush' },
  { page: 'docs/architecture.md', text: 'src/bundle-loader.cts' },
];

describe('documentation: nothing of the old README lost', () => {
  for (const topic of OLD_README_TOPICS) {
    it(`"${topic.old}" is in ${topic.page}#${topic.anchor}`, () => {
      expect([...anchorsOf(readPage(topic.page))]).to.include(topic.anchor);
    });
  }

  it('keeps the facts a reader searches for by name', () => {
    const flat = (text: string): string => text.replace(/\s+/g, ' ');
    for (const fact of OLD_README_FACTS) expect(flat(readPage(fact.page)), `${fact.page} says ${fact.text}`).to.include(flat(fact.text));
  });
});
