// Ctrl-C and SIGTERM on a cold merge: a terminal's Ctrl-C (SIGINT to the CLI's process group: its qemu-storage-daemon
// gets it too), `kill -INT PID` and `kill -TERM PID` (volmerge alone, which stops its daemon), before the commit and
// during it, and a second SIGINT. The CLI ends by the signal and says where the chain stands (as before, every byte
// unchanged; or unfinished from a step); the same command once more merges: data identical, bitmaps valid and
// covering, no leak, no journal left.
import { expect } from 'chai';
import { readdir, writeFile } from 'node:fs/promises';
import { startCli, volmerge, type StartedCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { expectMerged, prepareChain, type PreparedChain } from '../helpers/crash-harness.js';
import { expectEndedBy, untilCommitRuns, untilStderr } from '../helpers/interrupt.js';
import { fingerprints } from '../helpers/merge-result.js';
import { Workspace } from '../helpers/workspace.js';

const MiB = 1024 * 1024;
/** top's 32 MiB take about 8 s to commit at this rate: the signal comes while the commit writes. */
const RATE = String(4 * MiB);

describe('volmerge merge (cold): Ctrl-C and SIGTERM', function () {
  this.timeout(120_000);
  let ws: Workspace;
  let cli: StartedCli | undefined;
  beforeEach(async () => {
    ws = await Workspace.create('volmerge-intr-');
  });
  afterEach(async () => {
    cli?.kill('SIGKILL');
    await cli?.done;
    cli = undefined;
    await ws.dispose();
  });

  const args = (chain: PreparedChain, extra: string[] = []): string[] => ['merge', '--top', chain.top, '--base', chain.base, ...extra];
  const keptJobs = async (chain: PreparedChain): Promise<string[]> => readdir(`${chain.stateDir}/jobs`).catch(() => []);

  /** The same command once more: done, the merge whole, qemu-img check clean (no leak), nothing kept. */
  async function expectSameCommandMerges(chain: PreparedChain, resumedFrom?: string): Promise<void> {
    const again = await volmerge(args(chain), chain.env);
    expect(again.exitCode, again.stderr).to.equal(0);
    if (resumedFrom) expect(again.stdout).to.match(new RegExp(`finished the merge that job cli-\\d+-\\d+ had left at step ${resumedFrom}`));
    else expect(again.stdout).not.to.contain('finished the merge that job');
    await expectMerged(chain);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    expect(await keptJobs(chain), 'no journal kept').to.deep.equal([]);
  }

  it('Ctrl-C before the commit (held before the prune): as before, every byte unchanged, nothing kept; the same command merges', async () => {
    const chain = await prepareChain(ws, 'file');
    const before = await fingerprints([chain.top, chain.base]);
    const go = ws.path('go');
    cli = startCli([...args(chain), '--json'], { ...chain.env, VOLMERGE_HOLD_AT: `prune:${go}` });
    await untilStderr(cli, /test hold: before step prune/);
    cli.kill('SIGINT');
    await untilStderr(cli, /SIGINT: stopping where it is safe/);
    await writeFile(go, '');
    const run = await cli.done;
    const json = expectEndedBy(run, 'SIGINT');
    expect(json.interrupted).to.deep.equal({ signal: 'SIGINT', chain: 'as-before' });
    expect(run.stderr).to.match(/interrupted by SIGINT at step prune: .*top\.qcow2 is not merged into .*base\.qcow2 and the chain is as it was; run the same command again/);
    const after = await fingerprints([chain.top, chain.base]);
    expect(after.sums, 'every byte unchanged').to.deep.equal(before.sums);
    expect(after.mtimes, 'nothing written').to.deep.equal(before.mtimes);
    expect(await keptJobs(chain), 'no journal kept').to.deep.equal([]);
    await expectSameCommandMerges(chain);
  });

  for (const [how, signal, toGroup, daemon] of [
    ["a terminal's Ctrl-C (SIGINT to the process group, qemu-storage-daemon included)", 'SIGINT', true, true],
    ['kill -INT PID (volmerge alone)', 'SIGINT', false, true],
    ['kill -TERM PID (volmerge alone)', 'SIGTERM', false, true],
    ["without qemu-storage-daemon, a terminal's Ctrl-C (qemu-img commit included)", 'SIGINT', true, false],
    ['without qemu-storage-daemon, kill -TERM PID (volmerge alone)', 'SIGTERM', false, false],
  ] as const) {
    it(`${how} during the commit: unfinished from the commit, no qemu process left; the same command finishes it`, async () => {
      const chain = await prepareChain(ws, 'file');
      const noDaemon: Record<string, string> = daemon ? {} : { VOLMERGE_QEMU_STORAGE_DAEMON: ws.path('no-qemu-storage-daemon') };
      cli = startCli([...args(chain), '--json', '--rate-limit', RATE], { ...chain.env, ...noDaemon });
      await untilCommitRuns(cli, chain);
      if (toGroup) cli.kill(signal);
      else cli.signalProcess(signal);
      // done waits until no process of the CLI's group is left: the daemon ended with it.
      const run = await cli.done;
      const json = expectEndedBy(run, signal);
      expect(json.status).to.equal('interrupted');
      expect(json.interrupted).to.deep.equal({ signal, chain: 'unfinished', resumeFrom: 'commit' });
      expect(run.stderr).to.match(new RegExp(`interrupted by ${signal} during step commit.*: the merge of .*top\\.qcow2 into .*base\\.qcow2 is unfinished .*run the same command again to finish it from step commit`));
      expect(await keptJobs(chain), 'the journal is kept').to.have.length(1);
      await expectSameCommandMerges(chain, 'commit');
    });
  }

  it('a second SIGINT leaves at once, naming what is left and the command; that command finishes the merge', async () => {
    const chain = await prepareChain(ws, 'file');
    cli = startCli([...args(chain), '--json'], { ...chain.env, VOLMERGE_HOLD_AT: `bitmaps:${ws.path('never')}` });
    await untilStderr(cli, /test hold: before step bitmaps/);
    cli.kill('SIGINT');
    await untilStderr(cli, /SIGINT: stopping where it is safe/);
    cli.kill('SIGINT');
    const run = await cli.done;
    const json = expectEndedBy(run, 'SIGINT');
    // The last step begun before the hold at bitmaps: leaks (nothing to give back, so it only passes through).
    expect(json.interrupted).to.deep.equal({ signal: 'SIGINT', chain: 'unfinished', leftAtOnce: true, lastStep: 'leaks' });
    expect(run.stderr).to.contain(`volmerge status --base ${chain.base}`).and.to.contain(`volmerge merge --top ${chain.top} --base ${chain.base} --json`);
    expect(await keptJobs(chain), 'the journal is kept').to.have.length(1);
    // On disk the journal's last done step is the commit (leaks, with nothing to give back, is done only in memory).
    await expectSameCommandMerges(chain, 'leaks');
  });
});
