// Inconsistent bitmaps after a VM crash, and --drop-inconsistent: a real VM SIGKILLed leaves top's bitmaps in-use (base's,
// opened read-only, stay valid); a cold merge of that chain is refused without the option (every byte unchanged) and
// merges with it: data identical, the broken bitmaps gone from top and base, a bitmap made after the crash kept valid and
// covering, qemu-img check clean, the result naming what was lost. kill -9 right after the drop and inside it, then the
// same command, finishes. The agent's drop_inconsistent does the same through SDM.merge.
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import { runCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { covers, dirtyExtents } from '../helpers/dirty-map.js';
import { addBitmap, bitmapsIn, sameData, writeData } from '../helpers/images.js';
import { applyWrites, buildLiveChain, guestView, type BuiltChain } from '../helpers/live-chain.js';
import { DISK_BACKEND, startLiveVm } from '../helpers/live-vm.js';
import { expectDone, expectRefused, mergeJson } from '../helpers/merge-result.js';
import { Workspace } from '../helpers/workspace.js';
import { queryBlockJobs, queryJobs, queryNodes } from '../../src/live/queries.js';

const MiB = 1024 * 1024;
/** Written into top after the crash, once the bitmap `fresh` exists: it must mark it, in base too. */
const AFTER_CRASH = { offset: 120 * MiB, length: MiB };

/** A chain whose VM was SIGKILLed, a raw copy of what its disk holds, and the bitmap made afterwards. */
interface CrashedChain extends BuiltChain {
  raw: string;
}

describe('--drop-inconsistent: bitmaps left in-use by a VM killed with SIGKILL', function () {
  this.timeout(120_000);
  let ws: Workspace;
  beforeEach(async () => {
    ws = await Workspace.create('volmerge-drop-');
  });
  afterEach(async () => {
    await ws.dispose();
  });

  const stateArgs = (): string[] => ['--state-dir', ws.path('state')];
  const mergeArgs = (chain: BuiltChain, extra: string[] = []): string[] => ['--top', chain.top, '--base', chain.base, ...stateArgs(), ...extra];
  const keptJobs = async (): Promise<string[]> => readdir(ws.path('state/jobs')).catch(() => []);

  /**
   * Runs a VM on base <- top (base: stale0, stale1, shared; top: shared, toponly), lets the guest write and flush, and
   * SIGKILLs it. Then a new bitmap `fresh` is added to top (a backup tool's new checkpoint) and more data written.
   */
  async function crashedChain(): Promise<CrashedChain> {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    const vm = await startLiveVm(ws.dir, chain.layers);
    try {
      await vm.write(0x81, 100 * MiB, MiB);
      await vm.qmp.call('human-monitor-command', { 'command-line': `qemu-io -d ${DISK_BACKEND} "flush"` });
    } finally {
      await vm.kill();
    }
    await applyWrites(raw, vm.writes);
    await addBitmap(chain.top, 'fresh');
    await writeData(chain.top, AFTER_CRASH.offset / MiB, AFTER_CRASH.length / MiB, 0x82);
    await applyWrites(raw, [{ pattern: 0x82, ...AFTER_CRASH }]);
    return { ...chain, raw };
  }

  /** After the merge: base reads as top did, only `fresh` in base and top, valid and covering, check clean, nothing kept. */
  async function expectMergedWithoutBroken(chain: CrashedChain): Promise<void> {
    expect(await sameData(chain.base, chain.raw), 'base reads as top did').to.equal(true);
    for (const image of [chain.base, chain.top]) {
      const bitmaps = await bitmapsIn(image);
      expect(bitmaps.map((b) => [b.name, b.flags]), `bitmaps of ${image}`).to.deep.equal([['fresh', ['auto']]]);
    }
    expect(covers(await dirtyExtents(chain.base, 'fresh'), [AFTER_CRASH]), "base's fresh marks what was written after it").to.equal(true);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
  }

  it("a VM killed with SIGKILL leaves top's bitmaps in-use; base's, read-only in the VM, stay valid", async () => {
    const chain = await buildLiveChain(ws.dir);
    const before = await bitmapsIn(chain.top);
    expect(before.map((b) => b.flags)).to.deep.equal([['auto'], ['auto']]);
    const vm = await startLiveVm(ws.dir, chain.layers);
    await vm.write(0x81, 100 * MiB, MiB);
    await vm.kill();
    expect((await bitmapsIn(chain.top)).map((b) => [b.name, b.flags])).to.deep.equal([
      ['shared', ['in-use', 'auto']],
      ['toponly', ['in-use', 'auto']],
    ]);
    expect((await bitmapsIn(chain.base)).map((b) => b.flags)).to.deep.equal([['auto'], ['auto'], ['auto']]);
  });

  it('refuses the merge without the option, naming it, every byte unchanged; merges with it, naming the bitmaps lost', async () => {
    const chain = await crashedChain();
    await expectRefused(mergeArgs(chain), 'bitmap-in-use', [/bitmap shared, toponly is in-use/, /merge with --drop-inconsistent/], [chain.top, chain.base]);
    expect(await keptJobs()).to.deep.equal([]);
    const run = await mergeJson(mergeArgs(chain, ['--drop-inconsistent']));
    const plan = expectDone(run) as { inconsistent?: string[]; prune: string[]; merge: string[] };
    expect(plan.inconsistent).to.deep.equal(['shared', 'toponly']);
    expect(plan.prune).to.deep.equal(['stale0', 'stale1']);
    expect(plan.merge).to.deep.equal(['fresh']);
    expect((run.json as { fullBackupNeeded?: string[] }).fullBackupNeeded).to.deep.equal(['shared', 'toponly']);
    await expectMergedWithoutBroken(chain);
  });

  it('says in its text which bitmaps were lost and that their next backup must be a full one', async () => {
    const chain = await crashedChain();
    const run = await runCli(['merge', ...mergeArgs(chain, ['--drop-inconsistent'])], {});
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('drop (in-use):   shared, toponly, from top and base');
    expect(run.stdout).to.contain('dropped inconsistent bitmaps shared, toponly (removed from top and base, as --drop-inconsistent asked): the next backup of each must be a full one');
    await expectMergedWithoutBroken(chain);
  });

  // prune:after: right after the drop (and the prune); drop:during:40: inside the removal of top's broken bitmaps, one
  // of two removed, top's other bitmaps left in-use by the killed qemu-storage-daemon (rebuilt from the backup).
  for (const crashAt of ['prune:after', 'drop:during:40'] as const) {
    it(`finishes with the same command after kill -9 at ${crashAt}, still naming the bitmaps lost`, async () => {
      const chain = await crashedChain();
      const killed = await runCli(['merge', ...mergeArgs(chain, ['--drop-inconsistent'])], { VOLMERGE_CRASH_AT: crashAt });
      expect(killed.signal, killed.stderr).to.equal('SIGKILL');
      expect(await keptJobs(), 'the journal is kept').to.have.length(1);
      const fresh = (await bitmapsIn(chain.top)).find((b) => b.name === 'fresh');
      if (crashAt === 'drop:during:40') expect(fresh?.flags, "the killed daemon left top's kept bitmap in-use").to.include('in-use');
      const run = await mergeJson(mergeArgs(chain, ['--drop-inconsistent', '--log-level', 'info']));
      if (crashAt === 'drop:during:40') expect(run.cli.stderr).to.match(/rebuilding bitmap fresh of top .* from the backup/);
      const plan = expectDone(run) as { inconsistent?: string[] };
      expect(plan.inconsistent, 'the bitmaps the first run dropped are named too').to.deep.equal(['shared', 'toponly']);
      expect(run.cli.stdout + run.cli.stderr).not.to.contain('internal');
      await expectMergedWithoutBroken(chain);
    });
  }

  it('live (--qmp): a VM started again on the crashed chain shows them inconsistent; refused without the option, merged with it', async () => {
    const chain = await crashedChain();
    const vm = await startLiveVm(ws.dir, chain.layers);
    try {
      const top = (await queryNodes(vm.qmp)).find((node) => node['node-name'] === vm.volumes[1]?.format);
      expect(top?.['dirty-bitmaps']?.map((b) => [b.name, b.inconsistent === true]).sort()).to.deep.equal([
        ['fresh', false],
        ['shared', true],
        ['toponly', true],
      ]);
      const live = [...mergeArgs(chain), '--qmp', vm.socket];
      const refused = await runCli(['merge', ...live], {});
      expect(refused.exitCode, refused.stderr).to.equal(1);
      expect(refused.stderr).to.contain(`shared in top ${chain.top}`).and.to.contain(`toponly in top ${chain.top}`);
      expect(refused.stderr).to.match(/is inconsistent .*merge with --drop-inconsistent/);
      expect(await queryJobs(vm.qmp), 'no job started').to.deep.equal([]);
      await vm.write(0x83, 130 * MiB, MiB);
      const run = await mergeJson([...live, '--drop-inconsistent']);
      const plan = expectDone(run) as { inconsistent?: string[]; merge: string[] };
      expect(plan.inconsistent).to.deep.equal(['shared', 'toponly']);
      expect(plan.merge).to.deep.equal(['fresh']);
      expect(await queryBlockJobs(vm.qmp)).to.deep.equal([]);
      await vm.write(0x84, 140 * MiB, MiB);
      await vm.quit();
    } finally {
      await vm.kill();
    }
    await applyWrites(chain.raw, vm.writes);
    expect(await sameData(chain.base, chain.raw), 'base reads as the guest saw its disk').to.equal(true);
    for (const image of [chain.base, chain.top]) {
      expect((await bitmapsIn(image)).map((b) => [b.name, b.flags]), `bitmaps of ${image}`).to.deep.equal([['fresh', ['auto']]]);
    }
    const marked = [AFTER_CRASH, ...vm.writes.map((w) => ({ offset: w.offset, length: w.length }))];
    expect(covers(await dirtyExtents(chain.base, 'fresh'), marked), "base's fresh marks every write after it was made").to.equal(true);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    expect(await keptJobs()).to.deep.equal([]);
  });
});
