// Live merge through the CLI (volmerge merge --qmp) with a real VM: refusals that change nothing (a fixed base device
// too small among them), an internal and an active merge, volmerge SIGKILLed mid-job and the same command run again,
// and a VM killed mid-job whose chain a cold merge then finishes. Each ends with base (or the leaf) reading exactly as
// the guest saw its disk, and every kept bitmap valid once the VM has quit and marking every write made before and
// during the job.
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import { checksums, runCli, startCli, volmerge, type StartedCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { attachLoop, canUseLoopDevices, detachLoop } from '../helpers/loop.js';
import { waitForQemuJob } from '../helpers/live-cli.js';
import {
  applyWrites,
  BASE_DATA,
  buildLiveChain,
  expectCovers,
  expectMissing,
  expectSameData,
  expectValidBitmaps,
  extentsOf,
  guestView,
  TOP_DATA,
  TOP_UNTRACKED,
  type BuiltChain,
} from '../helpers/live-chain.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { Workspace } from '../helpers/workspace.js';
import { queryJobs, queryNodes } from '../../src/live/queries.js';

const MiB = 1024 * 1024;
/** Slow enough that the guest writes while the job copies top's 28 MiB, fast enough to keep the suite short. */
const RATE = String(4 * MiB);

describe('volmerge merge --qmp: live merge through the CLI', function () {
  this.timeout(150_000);
  let ws: Workspace;
  let vm: LiveVm | undefined;
  let cli: StartedCli | undefined;
  beforeEach(async () => {
    ws = await Workspace.create('volmerge-live-cli-');
  });
  afterEach(async () => {
    cli?.kill('SIGKILL');
    await cli?.done;
    await vm?.kill();
    vm = undefined;
    cli = undefined;
    await ws.dispose();
  });

  const stateDir = (): string => ws.path('state');
  const mergeArgs = (chain: BuiltChain, extra: string[] = []): string[] => ['merge', '--top', chain.top, '--base', chain.base, '--state-dir', stateDir(), ...extra];

  /** The jobs the state folder keeps (none once a merge is done). */
  async function keptJobs(): Promise<string[]> {
    return readdir(ws.path('state/jobs')).catch(() => []);
  }

  /** The status of the chain as `volmerge status --json` reads it. */
  async function status(chain: BuiltChain): Promise<{ state: string; advice: string; job: { kind: string; nextStep: string } | null }> {
    const run = await volmerge(['status', '--base', chain.base, '--state-dir', stateDir(), '--json']);
    expect(run.exitCode, run.stderr).to.equal(0);
    return JSON.parse(run.stdout) as { state: string; advice: string; job: { kind: string; nextStep: string } | null };
  }

  /** After the VM quit: base holds what the guest saw, its kept bitmaps are valid and mark top's data and every write given. */
  async function expectMergedBase(chain: BuiltChain, raw: string, marked: { offset: number; length: number }[]): Promise<void> {
    await applyWrites(raw, vm!.writes);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectSameData(chain.base, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA, ...marked]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA, ...marked]);
    await expectMissing(chain.base, 'shared', TOP_UNTRACKED);
    await expectMissing(chain.base, 'toponly', TOP_UNTRACKED);
    expect((await bitmapsIn(chain.top)).map((b) => b.flags), 'top bitmaps not in-use').to.deep.equal([['auto'], ['auto']]);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
  }

  it('refuses a socket with no VM, a chain the VM does not run, and a cold merge of a running chain (naming --qmp); nothing changes', async () => {
    const chain = await buildLiveChain(ws.dir, { leaf: true });
    const other = ws.path('other.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', other]);
    vm = await startLiveVm(ws.dir, chain.layers);
    const watched = [chain.base, chain.top, chain.leaf ?? '', other];
    const before = await checksums(watched);
    const nodesBefore = await queryNodes(vm.qmp);

    const leaf = chain.leaf ?? '';
    const refusals: [string[], string, RegExp][] = [
      [['--top', chain.top, '--base', chain.base, '--qmp', ws.path('no.qmp')], 'not-found', /QMP socket .*no\.qmp: cannot connect .*is the VM running/],
      [['--top', other, '--base', chain.base, '--qmp', vm.socket], 'not-found', /^volmerge: top .*other\.qcow2: not open in the VM behind QMP socket/],
      [['--top', leaf, '--base', chain.base, '--qmp', vm.socket], 'bad-chain', /^volmerge: top .*leaf\.qcow2 is backed by top\.qcow2, not by base/],
      [['--top', chain.top, '--base', chain.base, '--qmp', vm.socket, '--remove-top'], 'unsupported', /live merge \(--qmp\) .* does not take --remove-top/],
      // A cold merge of the VM's active layer: qemu-img cannot lock it, and the refusal says how to merge it live.
      [['--top', leaf, '--base', chain.top], 'busy', /leaf\.qcow2: (qemu-img info .*lock|another process holds it open).*--qmp SOCKET/],
      // A cold merge of inner volumes: the VM holds them read-only, which qemu-img info allows; refused before any job is kept.
      [['--top', chain.top, '--base', chain.base], 'busy', /^volmerge: top .*top\.qcow2: another process holds it open and lets nobody write it .*--qmp SOCKET/],
    ];
    for (const [args, code, pattern] of refusals) {
      const run = await volmerge(['merge', '--state-dir', stateDir(), '--json', ...args]);
      expect(run.exitCode, run.stderr).to.equal(1);
      expect(run.stderr.trim().split('\n'), 'one line on stderr').to.have.length(1);
      expect(run.stderr, run.stderr).to.match(pattern);
      expect((JSON.parse(run.stdout) as { error: { code: string } }).error.code, run.stderr).to.equal(code);
    }
    expect(await queryJobs(vm.qmp), 'no job started').to.deep.equal([]);
    expect(await queryNodes(vm.qmp), 'nodes and bitmaps as they were').to.deep.equal(nodesBefore);
    expect(await keptJobs()).to.deep.equal([]);
    // Compared while the VM still runs: quitting rewrites the active layer's header (its bitmaps stored).
    expect(await checksums(watched), 'images unchanged').to.deep.equal(before);
    await vm.quit();
  });

  it('refuses a base on a fixed block device too small for the merge (too-small, naming the bytes) before the job starts; nothing changes', async function () {
    if (!(await canUseLoopDevices())) this.skip();
    // Base holds 8 MiB of data; with top's 28 MiB it needs about 36 MiB, more than the 16 MiB device.
    const device = await attachLoop(ws.path('base.img'), 16 * MiB);
    try {
      const chain = await buildLiveChain(ws.dir, { baseDevice: device });
      vm = await startLiveVm(ws.dir, chain.layers);
      const before = await checksums([chain.base, chain.top]);
      const run = await volmerge(mergeArgs(chain, ['--qmp', vm.socket, '--json']));
      expect(run.exitCode, run.stderr).to.equal(1);
      const error = (JSON.parse(run.stdout) as { error: { code: string; message: string } }).error;
      expect(error.code, run.stderr).to.equal('too-small');
      expect(error.message).to.match(new RegExp(`^base ${device}: block device of ${16 * MiB} bytes is too small for the merge, which needs \\d+ bytes`));
      expect(await queryJobs(vm.qmp), 'no job started').to.deep.equal([]);
      expect(await keptJobs(), 'no job kept').to.deep.equal([]);
      expect(await checksums([chain.base, chain.top]), 'images unchanged').to.deep.equal(before);
    } finally {
      await vm?.kill();
      vm = undefined;
      await detachLoop(device);
    }
  });

  it('merges an inner volume: the leaf ends backed by base, data and bitmaps right', async () => {
    const chain = await buildLiveChain(ws.dir, { leaf: true });
    const leaf = chain.leaf ?? '';
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    await vm.write(0x41, 100 * MiB, MiB);
    cli = startCli([...mergeArgs(chain, ['--qmp', vm.socket, '--rate-limit', RATE])], {});
    await waitForQemuJob(vm.qmp, cli);
    await vm.write(0x42, 120 * MiB, MiB);
    expect((await queryJobs(vm.qmp)).map((job) => job.status), 'the job still runs after the write').to.deep.equal(['running']);
    const run = await cli.done;
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('done (live)').and.to.contain(`the volume above ${chain.top} is backed by ${chain.base}`);
    await vm.write(0x43, 140 * MiB, MiB);
    // Closed in the VM: top is no longer locked.
    await sh(['qemu-img', 'info', chain.top]);
    await vm.quit();

    const info = JSON.parse(await sh(['qemu-img', 'info', '--output', 'json', leaf])) as { 'backing-filename'?: string };
    expect(info['backing-filename']).to.equal('base.qcow2');
    await applyWrites(raw, vm.writes);
    await expectSameData(leaf, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA]);
    await expectMissing(chain.base, 'shared', TOP_UNTRACKED);
    await expectCovers(leaf, 'leafmap', extentsOf(vm.writes));
    expect(await keptJobs()).to.deep.equal([]);
  });

  it('merges the active layer: pivot, the VM writes to base afterwards, and never pauses', async () => {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    const events: string[] = [];
    vm.qmp.onEvent((event) => events.push(event.event));
    await vm.write(0x31, 100 * MiB, MiB);
    cli = startCli([...mergeArgs(chain, ['--qmp', vm.socket, '--rate-limit', RATE, '--log-level', 'info'])], {});
    await waitForQemuJob(vm.qmp, cli);
    await vm.write(0x32, 120 * MiB, MiB);
    expect((await queryJobs(vm.qmp)).map((job) => job.status), 'the job still runs after the write').to.deep.equal(['running']);
    const run = await cli.done;
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.contain(`the VM writes to ${chain.base} now`);
    expect(run.stderr).to.contain('step: pivot').and.to.contain('commit: 100%');
    await vm.write(0x33, 140 * MiB, MiB);
    await vm.quit();
    expect(events, 'the VM never stopped').not.to.include('STOP');
    // The write after the pivot is in base: the VM wrote to it.
    await expectMergedBase(chain, raw, extentsOf(vm.writes));
  });

  it('finishes, when the same command runs again, a live merge whose volmerge was SIGKILLed mid-job', async () => {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    await vm.write(0x61, 100 * MiB, MiB);
    const args = mergeArgs(chain, ['--qmp', vm.socket, '--rate-limit', RATE]);
    cli = startCli(args, {});
    await waitForQemuJob(vm.qmp, cli);
    cli.kill('SIGKILL');
    const killed = await cli.done;
    expect(killed.signal).to.equal('SIGKILL');
    // The job goes on inside qemu without volmerge.
    expect((await queryJobs(vm.qmp)).map((job) => job.status)).to.deep.equal(['running']);
    await vm.write(0x62, 120 * MiB, MiB);
    // A cold merge is refused while the VM answers, and says how to finish the live one.
    const cold = await volmerge(mergeArgs(chain));
    expect(cold.exitCode).to.equal(1);
    expect(cold.stderr).to.contain('is unfinished and its VM still answers').and.to.contain(`--qmp ${vm.socket}`);
    const unfinished = await status(chain);
    expect(unfinished.state).to.equal('unfinished');
    expect(unfinished.job?.kind).to.equal('live');
    expect(unfinished.advice).to.contain(`--qmp ${vm.socket}`);

    cli = startCli(args, {});
    const again = await cli.done;
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout).to.contain('finished the merge that job').and.to.contain('done (live)');
    expect(again.stderr).to.contain('re-attaching');
    await vm.write(0x63, 140 * MiB, MiB);
    await vm.quit();
    await expectMergedBase(chain, raw, extentsOf(vm.writes));
    expect((await status(chain)).state).to.equal('idle');
  });

  // The cold merge that finishes a vm-gone job sizes base for what the VM's commit left (baseHoldsPartOfTop, journaled):
  // killed before its mark (a resume starts it over from a new plan) or after it (a resume sizes base again), the same
  // command once more still sizes it so, and finishes.
  for (const crashAt of [undefined, 'backup:after', 'mark:after']) {
    const after = crashAt ? `, killed at ${crashAt} and run once more` : '';
    it(`closes the live job of a VM killed mid-job as vm-gone, and a cold merge of the chain finishes it${after}`, async () => {
      const chain = await buildLiveChain(ws.dir);
      const raw = ws.path('guest.raw');
      await guestView(chain, raw);
      vm = await startLiveVm(ws.dir, chain.layers);
      await vm.write(0x51, 100 * MiB, MiB);
      const live = mergeArgs(chain, ['--qmp', vm.socket, '--rate-limit', RATE]);
      cli = startCli(live, {});
      await waitForQemuJob(vm.qmp, cli);
      await vm.write(0x52, 120 * MiB, MiB);
      expect((await queryJobs(vm.qmp)).map((job) => job.status), 'the job still runs after the write').to.deep.equal(['running']);
      await vm.terminate();
      const failed = await cli.done;
      expect(failed.exitCode, failed.stderr).to.equal(1);
      const unfinished = await status(chain);
      expect(unfinished.state).to.equal('unfinished');
      expect(unfinished.job?.kind).to.equal('live');

      // The same command with --qmp cannot finish it: the VM is gone.
      const refused = await volmerge(live);
      expect(refused.exitCode).to.equal(1);
      expect(refused.stderr).to.contain('cannot connect');
      if (crashAt) {
        const killed = await runCli(mergeArgs(chain), { VOLMERGE_CRASH_AT: crashAt });
        expect(killed.signal, killed.stderr).to.equal('SIGKILL');
        expect(killed.stderr).to.contain('is gone; the live merge ended before its pivot');
        expect((await status(chain)).job?.kind, 'the cold merge is what is unfinished now').to.equal('cold');
      }
      // Base holds part of top, with the holes the interrupted commit left: the cold merge sizes for them and finishes at once.
      const cold = await volmerge(mergeArgs(chain));
      if (!crashAt) expect(cold.stderr).to.contain('is gone; the live merge ended before its pivot');
      expect(cold.exitCode, cold.stderr).to.equal(0);
      expect(cold.stdout).to.contain("holds top's data; bitmaps verified");
      await expectMergedBase(chain, raw, extentsOf(vm.writes));
    });
  }
});
