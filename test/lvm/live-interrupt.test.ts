// Ctrl-C and SIGTERM on `volmerge merge --qmp` with the chain on LVs, in the LVM test VM: a real qemu-system-x86_64
// (TCG, no guest OS) runs with base and top on /dev/VG/LV, base's LV too small so that the merge's extend step grows
// it (lvextend) before the block job starts. A signal before the pivot (the job copying, or ready and held before the
// pivot), as a terminal's Ctrl-C (SIGINT to the CLI's process group) or SIGTERM to the CLI alone: the CLI ends by the
// signal, qemu has no block job left, the VM's chain and bitmaps are as they were, the VM never paused; base's LV
// stays extended (the abort does not shrink it back: the space is base's, and the next merge uses it). Then the same
// command once more merges, and base reads as the guest saw its disk, every kept bitmap valid and covering. A signal
// after the pivot has started: the merge is finished and the CLI exits 0.
import { expect } from 'chai';
import { readdir, writeFile } from 'node:fs/promises';
import { startCli, type StartedCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { bitmapsIn } from '../helpers/images.js';
import { expectEndedBy, untilStderr } from '../helpers/interrupt.js';
import { waitForQemuJob } from '../helpers/live-cli.js';
import { applyWrites, BASE_DATA, buildLiveChain, expectMarks, expectSameData, expectValidBitmaps, extentsOf, guestView, TOP_DATA, TOP_UNTRACKED, type BuiltChain } from '../helpers/live-chain.js';
import { expectVmChainAsBefore, vmChainState, type VmChainState } from '../helpers/live-interrupt.js';
import { DISK_BACKEND, startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { watchRunning, type RunningWatch } from '../helpers/vm-running.js';
import type { Workspace } from '../helpers/workspace.js';
import { LiveGraph } from '../../src/live/graph.js';
import { queryBlockJobs, queryGraph, queryJobs, queryNodes } from '../../src/live/queries.js';
import { parseAgainst } from '../../src/schema.js';

const MiB = 1024 * 1024;
/** Base's LV at the start: smaller than the merge needs, so that the extend step grows it before the job. */
const BASE_MIB = 12;
/** Slow enough that the signal comes while the job copies top's 24 MiB. */
const RATE = String(2 * MiB);
const KEPT = { shared: 64 * 1024, toponly: 128 * 1024 };
type Signal = 'SIGINT' | 'SIGTERM';

describe('LVM: Ctrl-C and SIGTERM on volmerge merge --qmp with the chain on LVs', function () {
  this.timeout(600_000);
  let vg: TestVg;
  let ws: Workspace;
  let vm: LiveVm | undefined;
  let cli: StartedCli | undefined;
  let running: RunningWatch | undefined;
  let events: string[];
  const lvs: string[] = [];
  before(async function () {
    if (!(await hasDeviceMapper())) this.skip();
    vg = await TestVg.create('2G', '4m');
  });
  after(async () => {
    await vg?.dispose();
  });
  // Registered before the workspace's hook, so that it runs first: the CLI and the VM end before their folder goes.
  afterEach(async () => {
    cli?.kill('SIGKILL');
    await cli?.done;
    await running?.stop().catch(() => undefined);
    await vm?.kill();
    cli = undefined;
    running = undefined;
    vm = undefined;
    // Each cell's base LV grows to hold the whole disk (about 300 MiB): the next cells need the space back.
    for (const lv of lvs.splice(0)) await vg.removeLv(lv);
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-lvm-intr-');

  const mergeArgs = (chain: BuiltChain, extra: string[] = []): string[] => ['merge', '--top', chain.top, '--base', chain.base, '--state-dir', ws.path('state'), '--qmp', vm?.socket ?? '', '--json', ...extra];
  const keptJobs = async (): Promise<string[]> => readdir(ws.path('state/jobs')).catch(() => []);
  const send = (signal: Signal): void => (signal === 'SIGINT' ? cli!.kill('SIGINT') : cli!.signalProcess('SIGTERM'));

  /** LVs name-base (too small) and name-top, the chain on them, the guest's raw copy, the VM, its events and its watch; one guest write. */
  async function startOnLvs(name: string): Promise<{ chain: BuiltChain; raw: string; before: VmChainState }> {
    lvs.push(`${name}-base`, `${name}-top`);
    const chain = await buildLiveChain(ws.dir, { baseDevice: await vg.lv(`${name}-base`, BASE_MIB), topDevice: await vg.lv(`${name}-top`, 64) });
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    events = [];
    vm.qmp.onEvent((event) => events.push(event.event));
    running = watchRunning(vm.qmp);
    await vm.write(0x61, 100 * MiB, MiB);
    return { chain, raw, before: await vmChainState(vm.qmp) };
  }

  /** Stops watching the VM: it answered 'running' every time and never stopped or saw an I/O error. */
  async function expectNeverStopped(): Promise<void> {
    const seen = await running!.stop();
    running = undefined;
    expect(seen.polls, 'query-status polls').to.be.greaterThan(3);
    expect(seen.statuses, 'every query-status answer').to.deep.equal(['running']);
    expect(seen.stops, 'STOP and BLOCK_IO_ERROR events').to.deep.equal([]);
  }

  /** The CLI ended by the signal before the pivot (stopped at step): the chain as it was, nothing kept, base's LV still extended. */
  async function expectStoppedAsBefore(signal: Signal, name: string, step: string, before: VmChainState, sentAt: number): Promise<void> {
    const run = await cli!.done;
    const ms = Date.now() - sentAt;
    console.log(`      ${name}: ${signal} to the CLI's end ${ms} ms; base LV ${BASE_MIB} MiB, left at ${(await vg.lvSize(`${name}-base`)) / MiB} MiB`);
    expect(run.signal, `ended by ${signal}, not exit ${run.exitCode}: ${run.stderr}`).to.equal(signal);
    // What the VM shows first: a job left behind must fail here, whatever the CLI printed.
    await expectVmChainAsBefore(vm!.qmp, before);
    const json = expectEndedBy(run, signal);
    expect(json.status).to.equal('interrupted');
    expect(json.interrupted).to.deep.equal({ signal, chain: 'as-before' });
    expect(json.error?.code).to.equal('aborted');
    expect(run.stderr).to.match(new RegExp(`interrupted by ${signal} at step ${step}: .* is not merged .* block job volmerge-cli-\\d+-\\d+ cancelled.*base's stale bitmaps stale0, stale1 were pruned`));
    expect(run.stderr, 'the message says the LV stays grown').to.match(/base's LV was extended to \d+ bytes or more and stays so/);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
    expect(await vg.lvSize(`${name}-base`), "base's LV stays as the extend step grew it").to.be.greaterThan(BASE_MIB * MiB);
  }

  /** The same command once more merges; after the VM quit, base reads as the guest saw it, its bitmaps valid and covering, base fitting its LV. */
  async function expectSameCommandMerges(args: string[], chain: BuiltChain, raw: string, name: string): Promise<void> {
    cli = startCli(args, {});
    const again = await cli.done;
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(parseAgainst<{ status: string }>('merge-result.schema.json', again.stdout, 'merge --json').status).to.equal('done');
    expect(await queryBlockJobs(vm!.qmp), 'no block job after the merge').to.deep.equal([]);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
    await expectMergedData(chain, raw, name);
  }

  /** The guest writes once more, the VM quits; base is whole, reads as the guest saw it, bitmaps valid and covering. */
  async function expectMergedData(chain: BuiltChain, raw: string, name: string): Promise<void> {
    await vm!.write(0x69, 140 * MiB, MiB);
    await expectNeverStopped();
    expect(events, 'no block job error').not.to.include('BLOCK_JOB_ERROR');
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(chain.base, raw);
    const check = JSON.parse(await sh(['qemu-img', 'check', '--output', 'json', '-f', 'qcow2', chain.base])) as { 'image-end-offset': number; leaks?: number; 'check-errors': number };
    expect([check.leaks ?? 0, check['check-errors']], 'qemu-img check: no leaks, no errors').to.deep.equal([0, 0]);
    expect(check['image-end-offset'], 'base fits in its LV').to.be.at.most(await vg.lvSize(`${name}-base`));
    await expectValidBitmaps(chain.base, KEPT);
    const writes = extentsOf(vm!.writes);
    await expectMarks(chain.base, 'toponly', { covered: [TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
    await expectMarks(chain.base, 'shared', { covered: [BASE_DATA, TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
    expect((await bitmapsIn(chain.top)).map((b) => b.flags), 'top bitmaps not in-use').to.deep.equal([['auto'], ['auto']]);
  }

  for (const [how, signal] of [
    ['Ctrl-C (SIGINT to the process group)', 'SIGINT'],
    ['SIGTERM to the CLI alone', 'SIGTERM'],
  ] as const) {
    const tag = signal.toLowerCase();
    it(`${how} while the job copies into the extended base LV: job cancelled, chain as it was, VM running; the same command then merges`, async () => {
      const name = `copy-${tag}`;
      const { chain, raw, before } = await startOnLvs(name);
      const args = mergeArgs(chain, ['--rate-limit', RATE]);
      cli = startCli(args, {});
      await waitForQemuJob(vm!.qmp, cli, ['running']);
      await vm!.write(0x62, 120 * MiB, MiB);
      const sentAt = Date.now();
      send(signal);
      await expectStoppedAsBefore(signal, name, 'wait', before, sentAt);
      expect(events, 'the running job was cancelled').to.include('BLOCK_JOB_CANCELLED');
      // The guest goes on writing to top.
      await vm!.write(0x63, 130 * MiB, MiB);
      await expectSameCommandMerges(args, chain, raw, name);
    });

    it(`${how} once the job is ready (held before the pivot): qemu completes it without a pivot, chain as it was; the same command then merges`, async () => {
      const name = `ready-${tag}`;
      const { chain, raw, before } = await startOnLvs(name);
      const go = ws.path('go');
      const args = mergeArgs(chain);
      cli = startCli(args, { VOLMERGE_HOLD_AT: `pivot:${go}` });
      await untilStderr(cli, /test hold: before step pivot/, 300_000);
      expect((await queryJobs(vm!.qmp)).map((job) => job.status), 'the job is ready').to.deep.equal(['ready']);
      const sentAt = Date.now();
      send(signal);
      await untilStderr(cli, new RegExp(`${signal}: stopping where it is safe`));
      await writeFile(go, '');
      await expectStoppedAsBefore(signal, name, 'pivot', before, sentAt);
      expect(events.filter((e) => e.startsWith('BLOCK_JOB_') && e !== 'BLOCK_JOB_READY'), 'a ready job cancelled completes without a pivot').to.deep.equal(['BLOCK_JOB_COMPLETED']);
      await vm!.write(0x63, 130 * MiB, MiB);
      await expectSameCommandMerges(args, chain, raw, name);
    });

    it(`${how} after the pivot has started: the merge is finished, the CLI says so and exits 0`, async () => {
      const name = `pivot-${tag}`;
      const { chain, raw } = await startOnLvs(name);
      const go = ws.path('go');
      cli = startCli(mergeArgs(chain), { VOLMERGE_HOLD_AT: `close:${go}` });
      // Held before the close step: the pivot is done, the VM writes to base's LV.
      await untilStderr(cli, /test hold: before step close/, 300_000);
      const graph = new LiveGraph(await queryNodes(vm!.qmp), await queryGraph(vm!.qmp));
      expect(graph.devicesOf(vm!.volumes[0]?.format ?? ''), 'the device is on base').to.deep.equal([DISK_BACKEND]);
      send(signal);
      await untilStderr(cli, new RegExp(`${signal}: stopping where it is safe`));
      await writeFile(go, '');
      const run = await cli.done;
      expect(run.exitCode, run.stderr).to.equal(0);
      const json = parseAgainst<{ status: string; interrupted?: unknown }>('merge-result.schema.json', run.stdout, 'merge --json');
      expect(json.status).to.equal('done');
      expect(json.interrupted).to.deep.equal({ signal, chain: 'merged' });
      expect(run.stderr).to.contain(`${signal} came once the merge could only be finished`);
      expect(await queryBlockJobs(vm!.qmp)).to.deep.equal([]);
      expect(await keptJobs()).to.deep.equal([]);
      await expectMergedData(chain, raw, name);
    });
  }
});
