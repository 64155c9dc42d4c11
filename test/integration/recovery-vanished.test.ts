// Start-up recovery of a job that waits (its volumes cannot be held: another host uses them) and then ends without this
// agent running it: its journal vanishes because another run finished the merge (done when base's generation moved on,
// as an agent's merge moves it; failed with job-gone when nothing shows the merge finished), its journal is removed by
// hand (job-gone), or another run of it failed (failed, with that run's error). A store that cannot be read or listed
// is not an answer: the job waits on. Real qemu-img on files; the chain checked whole at the end.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HostJobStore, scanJournals, writeJournal } from '../../src/engine/host-store.js';
import type { Journal } from '../../src/engine/journal.js';
import type { StoredJournal } from '../../src/engine/store.js';
import { VolmergeError } from '../../src/errors.js';
import { recoverJobs, type RecoveredJob, type RecoveryOptions } from '../../src/jobs/recovery.js';
import { runMergeJob } from '../../src/jobs/run-merge.js';
import { configureLog } from '../../src/log.js';
import { bumpGeneration } from '../../src/storage/generation.js';
import { checksum, runCli } from '../helpers/cli.js';
import { expectMerged, prepareChain, type PreparedChain } from '../helpers/crash-harness.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { sleep, until } from '../helpers/wait.js';
import type { Workspace } from '../helpers/workspace.js';

async function crashInsideCommit(chain: PreparedChain): Promise<Journal> {
  const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--rate-limit', String(16 * 1024 * 1024)], { ...chain.env, VOLMERGE_CRASH_AT: 'commit:during:40' });
  expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
  const [entry] = await scanJournals(chain.stateDir);
  if (!entry || !('journal' in entry)) throw new Error('the crashed merge left no readable journal');
  return entry.journal;
}

/** A host store whose reads (as another host's lock refuses a job LV) or listings (as a failing lvs) can be made to fail. */
class FlakyStore extends HostJobStore {
  static readRefused = false;
  static listingFails = false;
  override async keys(): Promise<string[]> {
    if (FlakyStore.listingFails) throw new VolmergeError('lvm-failed', 'volume group vgshared cannot be listed: lvs failed (exit 5)');
    return super.keys();
  }
  override async read(key: string): Promise<StoredJournal | undefined> {
    if (FlakyStore.readRefused) throw new VolmergeError('locked-by-other-host', `job LV vgshared/${key} is locked by another host`);
    return super.read(key);
  }
}

describe('start-up recovery: a waiting job whose journal vanishes or ends elsewhere', function () {
  this.timeout(120_000);
  let ws: Workspace;
  let stop: AbortController;
  const savedEnv = { ...process.env };
  before(() => configureLog('error'));
  after(() => configureLog('warn'));
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-vanished-');
  beforeEach(() => {
    process.env.VOLMERGE_LOCK_DIR = ws.path('locks');
    stop = new AbortController();
    FlakyStore.readRefused = false;
    FlakyStore.listingFails = false;
  });
  afterEach(() => {
    stop.abort();
    process.env = { ...savedEnv };
  });

  /** Recovery over the state folder with the chain held by "another host": the job waits, probed again every 100 ms. */
  async function recoverWaiting(chain: PreparedChain, updates: RecoveredJob[]): Promise<void> {
    const options: RecoveryOptions = {
      resume: (job) => expect.fail(`job ${job.jobId} must not be resumed here`),
      onUpdate: (job) => updates.push(job),
      retryDelayMs: 100,
      signal: stop.signal,
      holdVolumes: () => Promise.reject(new VolmergeError('locked-by-other-host', `base ${chain.base} is locked by another host`)),
    };
    const found = await recoverJobs(() => new FlakyStore(chain.stateDir), options);
    expect(found.map((j) => [j.state, j.error?.code])).to.deep.equal([['waiting', 'locked-by-other-host']]);
  }

  async function ended(updates: RecoveredJob[]): Promise<RecoveredJob> {
    await until(() => updates.some((u) => u.state !== 'waiting'), 'the job to end', 30_000);
    const count = updates.length;
    await sleep(400);
    expect(updates.length, 'no probe after the end').to.equal(count);
    const last = updates[updates.length - 1] as RecoveredJob;
    expect(updates.slice(0, -1).every((u) => u.state === 'waiting')).to.equal(true);
    return last;
  }

  it("ends done, with a note, when another run finished the merge and base's generation moved on", async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    const updates: RecoveredJob[] = [];
    await recoverWaiting(chain, updates);
    // Another run (the engine's retry on another host, say) finishes the merge as an agent does: the merge, then the
    // generation. The probes fail meanwhile, so that the test knows which of them sees the journal gone.
    FlakyStore.listingFails = true;
    expect((await runMergeJob({ jobId: 'retry-elsewhere', stateDir: chain.stateDir, top: chain.top, base: chain.base })).resumed?.jobId).to.equal(journal.jobId);
    await bumpGeneration({ kind: 'file', path: chain.base }, 0);
    FlakyStore.listingFails = false;
    const last = await ended(updates);
    expect(last).to.deep.include({ jobId: journal.jobId, state: 'done', top: chain.top, base: chain.base });
    expect(last.note).to.match(/finished by another run/).and.to.contain(`base ${chain.base}'s generation moved from 0 to 1`);
    expect(last.error).to.equal(undefined);
    await expectMerged(chain);
  });

  it('ends failed (job-gone) when another run finished the merge but the generation did not move, and keeps waiting while its store cannot answer', async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    const updates: RecoveredJob[] = [];
    await recoverWaiting(chain, updates);
    // A read refused by another host's lock, then a listing that fails: neither says the journal is gone.
    FlakyStore.readRefused = true;
    await until(() => updates.filter((u) => u.error?.code === 'locked-by-other-host' && /cannot be read now/.test(u.error.message)).length >= 2, 'probes refused by the lock');
    FlakyStore.listingFails = true;
    await until(() => updates.filter((u) => u.error?.code === 'lvm-failed').length >= 2, 'probes whose listing failed');
    expect(updates.every((u) => u.state === 'waiting'), 'still waiting').to.equal(true);
    FlakyStore.readRefused = false;
    FlakyStore.listingFails = false;
    // A command-line merge finishes it: the journal goes, the generation stays.
    const cli = await runCli(['merge', '--top', chain.top, '--base', chain.base], chain.env);
    expect(cli.exitCode, cli.stderr).to.equal(0);
    const last = await ended(updates);
    expect(last).to.deep.include({ jobId: journal.jobId, state: 'failed' });
    expect(last.error?.code).to.equal('job-gone');
    expect(updates.at(-2)?.error?.message, 'a journal found gone is confirmed at the next probe').to.match(/is gone; whether another run finished the merge is checked once more/);
    expect(last.error?.message)
      .to.contain(`its state (${join(chain.stateDir, 'jobs', journal.jobId)}`)
      .and.to.contain("generation has not moved (0)")
      .and.to.contain(`volmerge status --base ${chain.base}`);
    await expectMerged(chain);
  });

  it('ends failed (job-gone) when its journal was removed by hand, changing nothing', async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    const updates: RecoveredJob[] = [];
    await recoverWaiting(chain, updates);
    const sums = [await checksum(chain.base), await checksum(chain.top)];
    await rm(join(chain.stateDir, 'jobs', journal.jobId), { recursive: true });
    const last = await ended(updates);
    expect(last.error?.code).to.equal('job-gone');
    expect([await checksum(chain.base), await checksum(chain.top)], 'nothing changed').to.deep.equal(sums);
  });

  it("ends failed with the other run's error when another run of the same job failed", async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    const updates: RecoveredJob[] = [];
    await recoverWaiting(chain, updates);
    await writeJournal(chain.stateDir, { ...journal, state: 'failed', error: { code: 'no-space', message: 'VG vgshared has 0 bytes free' } });
    const last = await ended(updates);
    expect(last).to.deep.include({ jobId: journal.jobId, state: 'failed' });
    expect(last.error?.code).to.equal('no-space');
    expect(last.error?.message).to.match(/failed in another run while it waited here .*VG vgshared has 0 bytes free/);
  });
});
