// Ctrl-C and SIGTERM on a live merge (volmerge merge --qmp) with a real VM: a terminal's Ctrl-C (SIGINT to the CLI's
// process group) while the job copies and once it is ready, SIGTERM to the CLI alone, a second SIGINT that leaves at
// once, and a SIGINT that comes after the pivot (the merge is finished). Before the pivot the CLI ends by the signal,
// qemu has no block job left, the VM's chain and base's bitmaps are as they were and the VM never paused; then the same
// command once more merges, and base reads as the guest saw its disk with every kept bitmap valid and covering.
import { expect } from 'chai';
import { readdir, writeFile } from 'node:fs/promises';
import { startCli, volmerge, type StartedCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { expectEndedBy, untilStderr } from '../helpers/interrupt.js';
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
import { DISK_BACKEND, startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { Workspace } from '../helpers/workspace.js';
import { LiveGraph } from '../../src/live/graph.js';
import { queryBlockJobs, queryGraph, queryJobs, queryNodes } from '../../src/live/queries.js';
import { parseAgainst } from '../../src/schema.js';

const MiB = 1024 * 1024;

/** The VM's nodes as the checks compare them. */
type ChainState = { name: string; ro: boolean; backing: string | null; devices: string[]; bitmaps: (string | boolean)[][] }[];
/** Slow enough that the signal comes while the job copies top's 24 MiB. */
const RATE = String(2 * MiB);

describe('volmerge merge --qmp: Ctrl-C and SIGTERM', function () {
  this.timeout(180_000);
  let ws: Workspace;
  let vm: LiveVm | undefined;
  let cli: StartedCli | undefined;
  let events: string[];
  beforeEach(async () => {
    ws = await Workspace.create('volmerge-live-intr-');
  });
  afterEach(async () => {
    cli?.kill('SIGKILL');
    await cli?.done;
    await vm?.kill();
    vm = undefined;
    cli = undefined;
    await ws.dispose();
  });

  const mergeArgs = (chain: BuiltChain, extra: string[] = []): string[] => ['merge', '--top', chain.top, '--base', chain.base, '--state-dir', ws.path('state'), '--qmp', vm?.socket ?? '', ...extra];
  const keptJobs = async (): Promise<string[]> => readdir(ws.path('state/jobs')).catch(() => []);

  /** The VM's chain as the checks compare it: every node (read-only, backing, bitmaps and whether they record) and the devices on it. */
  async function chainState(): Promise<ChainState> {
    if (!vm) throw new Error('no VM');
    const graph = new LiveGraph(await queryNodes(vm.qmp), await queryGraph(vm.qmp));
    return (await queryNodes(vm.qmp))
      .map((node) => ({
        name: node['node-name'],
        ro: node.ro,
        backing: node.backing_file ?? null,
        devices: graph.devicesOf(node['node-name']),
        bitmaps: (node['dirty-bitmaps'] ?? []).map((b) => [b.name, b.recording, b.persistent, b.inconsistent ?? false]).sort(),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A VM on a fresh chain, a raw copy of what its guest sees, its events recorded, one guest write made. */
  async function startVm(): Promise<{ chain: BuiltChain; raw: string; before: ChainState }> {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    events = [];
    vm.qmp.onEvent((event) => events.push(event.event));
    await vm.write(0x71, 100 * MiB, MiB);
    return { chain, raw, before: await chainState() };
  }

  /**
   * After an interruption before the pivot: no job in qemu, the chain and base's bitmaps as before (recording as they
   * did), but for base's stale bitmaps, which the prune removed before the job started (the message says so); nothing
   * kept, the VM running.
   */
  async function expectAsBefore(before: ChainState): Promise<void> {
    expect(await queryJobs(vm!.qmp), 'no job left in qemu').to.deep.equal([]);
    expect(await queryBlockJobs(vm!.qmp), 'query-block-jobs empty').to.deep.equal([]);
    const pruned = before.map((node) => ({ ...node, bitmaps: node.bitmaps.filter((b) => !String(b[0]).startsWith('stale')) }));
    expect(await chainState(), "the VM's chain and base's bitmaps as they were").to.deep.equal(pruned);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
    expect(events, 'the VM never stopped').not.to.include('STOP');
  }

  /** The same command once more merges; after the VM quit, base reads as the guest saw it, its bitmaps valid and covering. */
  async function expectSameCommandMerges(chain: BuiltChain, raw: string): Promise<void> {
    const again = await volmerge(mergeArgs(chain));
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout).to.contain('done (live)');
    expect(await queryBlockJobs(vm!.qmp), 'no block job after the merge').to.deep.equal([]);
    await vm!.write(0x79, 140 * MiB, MiB);
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectSameData(chain.base, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA, ...extentsOf(vm!.writes)]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA, ...extentsOf(vm!.writes)]);
    await expectMissing(chain.base, 'shared', TOP_UNTRACKED);
    expect((await bitmapsIn(chain.top)).map((b) => b.flags), 'top bitmaps not in-use').to.deep.equal([['auto'], ['auto']]);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
  }

  for (const [how, signal] of [
    ['Ctrl-C (SIGINT to the process group)', 'SIGINT'],
    ['SIGTERM to the CLI alone', 'SIGTERM'],
  ] as const) {
    it(`${how} while the job copies: the block job is cancelled, the chain as it was; the same command then merges`, async () => {
      const { chain, raw, before } = await startVm();
      cli = startCli(mergeArgs(chain, ['--rate-limit', RATE, '--json']), {});
      await waitForQemuJob(vm!.qmp, cli, ['running']);
      await vm!.write(0x72, 120 * MiB, MiB);
      if (signal === 'SIGINT') cli.kill('SIGINT');
      else cli.signalProcess('SIGTERM');
      const run = await cli.done;
      const json = expectEndedBy(run, signal);
      expect(json.status).to.equal('interrupted');
      expect(json.interrupted).to.deep.equal({ signal, chain: 'as-before' });
      expect(json.error?.code).to.equal('aborted');
      expect(run.stderr).to.match(new RegExp(`interrupted by ${signal} at step wait: .* is not merged .* block job volmerge-cli-\\d+-\\d+ cancelled.*base's stale bitmaps stale0, stale1 were pruned`));
      await expectAsBefore(before);
      // The guest goes on writing to top.
      await vm!.write(0x73, 130 * MiB, MiB);
      await expectSameCommandMerges(chain, raw);
    });
  }

  it('Ctrl-C once the job is ready (held before the pivot): qemu completes it without a pivot, the chain as it was', async () => {
    const { chain, raw, before } = await startVm();
    const go = ws.path('go');
    cli = startCli(mergeArgs(chain, ['--json']), { VOLMERGE_HOLD_AT: `pivot:${go}` });
    await untilStderr(cli, /test hold: before step pivot/);
    expect((await queryJobs(vm!.qmp)).map((job) => job.status), 'the job is ready').to.deep.equal(['ready']);
    cli.kill('SIGINT');
    await untilStderr(cli, /SIGINT: stopping where it is safe/);
    await writeFile(go, '');
    const json = expectEndedBy(await cli.done, 'SIGINT');
    expect(json.interrupted).to.deep.equal({ signal: 'SIGINT', chain: 'as-before' });
    expect(events.filter((e) => e.startsWith('BLOCK_JOB_') && e !== 'BLOCK_JOB_READY'), 'a ready job cancelled completes without a pivot').to.deep.equal(['BLOCK_JOB_COMPLETED']);
    await expectAsBefore(before);
    await expectSameCommandMerges(chain, raw);
  });

  it('a second SIGINT leaves at once, naming what is left and the command; that command finishes the merge', async () => {
    const { chain, raw } = await startVm();
    cli = startCli(mergeArgs(chain, ['--json']), { VOLMERGE_HOLD_AT: `pivot:${ws.path('never')}` });
    await untilStderr(cli, /test hold: before step pivot/);
    expect((await queryJobs(vm!.qmp)).map((job) => job.status), 'the job is ready').to.deep.equal(['ready']);
    cli.kill('SIGINT');
    await untilStderr(cli, /SIGINT: stopping where it is safe/);
    cli.kill('SIGINT');
    const run = await cli.done;
    const json = expectEndedBy(run, 'SIGINT');
    expect(json.interrupted).to.deep.equal({ signal: 'SIGINT', chain: 'unfinished', leftAtOnce: true, lastStep: 'wait' });
    expect(run.stderr).to.contain(`volmerge status --base ${chain.base}`).and.to.contain(`--qmp ${vm!.socket}`).and.to.contain('the block job may still run');
    // What is left: qemu's job, ready, and the journal that names it.
    expect((await queryJobs(vm!.qmp)).map((job) => job.status)).to.deep.equal(['ready']);
    expect(await keptJobs()).to.have.length(1);
    await expectSameCommandMerges(chain, raw);
  });

  it('a SIGINT after the pivot has started: the merge is finished, the CLI says so and exits 0', async () => {
    const { chain, raw } = await startVm();
    const go = ws.path('go');
    cli = startCli(mergeArgs(chain, ['--json']), { VOLMERGE_HOLD_AT: `close:${go}` });
    // Held before the close step: the pivot is done, the VM writes to base.
    await untilStderr(cli, /test hold: before step close/);
    const graph = new LiveGraph(await queryNodes(vm!.qmp), await queryGraph(vm!.qmp));
    expect(graph.devicesOf(vm!.volumes[0]?.format ?? ''), 'the device is on base').to.deep.equal([DISK_BACKEND]);
    cli.kill('SIGINT');
    await untilStderr(cli, /SIGINT: stopping where it is safe/);
    await writeFile(go, '');
    const run = await cli.done;
    expect(run.exitCode, run.stderr).to.equal(0);
    const json = parseAgainst<{ status: string; interrupted?: unknown }>('merge-result.schema.json', run.stdout, 'merge --json');
    expect(json.status).to.equal('done');
    expect(json.interrupted).to.deep.equal({ signal: 'SIGINT', chain: 'merged' });
    expect(run.stderr).to.contain('SIGINT came once the merge could only be finished');
    expect(await queryBlockJobs(vm!.qmp)).to.deep.equal([]);
    expect(await keptJobs()).to.deep.equal([]);
    await vm!.write(0x7a, 150 * MiB, MiB);
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(chain.base, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA, ...extentsOf(vm!.writes)]);
  });
});
