// Live merges on LVs, in the LVM test VM: a real qemu-system-x86_64 (TCG, no guest OS) runs with the chain
// on /dev/VG/LV as a virtio-blk disk, the "guest" writes through HMP qemu-io, and the live library merges it: an active
// merge whose base LV is too small and grows during the job, an internal merge, an abort, and a merging process killed
// mid-job whose job a second client finishes; and the same through `volmerge merge --qmp`, whose extend step grows base.
// Throughout, the VM must never stop.
import { expect } from 'chai';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { sh } from '../helpers/commands.js';
import { startCli } from '../helpers/cli.js';
import { bitmapsIn } from '../helpers/images.js';
import { waitForQemuJob } from '../helpers/live-cli.js';
import {
  applyWrites,
  BASE_DATA,
  buildLiveChain,
  expectMarks,
  expectSameData,
  expectValidBitmaps,
  extentsOf,
  guestView,
  TOP_DATA,
  TOP_UNTRACKED,
  type BuiltChain,
} from '../helpers/live-chain.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';
import { watchRunning, type RunningWatch } from '../helpers/vm-running.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import type { Workspace } from '../helpers/workspace.js';
import {
  cancel,
  closeOldTop,
  disableForJob,
  findJob,
  findLiveChain,
  mergedInVm,
  pivotWithBitmaps,
  planLiveBitmaps,
  pruneLiveBitmaps,
  QmpClient,
  queryStatus,
  setSpeed,
  startCommit,
  waitReady,
  watchSpace,
  type LiveChain,
} from '../../src/live/index.js';
import type { QmpEvent } from '../../src/qemu/qmp-client.js';

const MiB = 1024 * 1024;
const JOB = 'volmerge-live-lvm';
const STARTER = fileURLToPath(new URL('../helpers/live-start-job.js', import.meta.url));
const KEPT = { shared: 64 * 1024, toponly: 128 * 1024 };

describe('LVM: live merges on LVs with a running VM', function () {
  this.timeout(300_000);
  let vg: TestVg;
  let ws: Workspace;
  let vm: LiveVm | undefined;
  let client: QmpClient | undefined;
  let running: RunningWatch | undefined;
  before(async function () {
    if (!(await hasDeviceMapper())) this.skip();
    vg = await TestVg.create('1G', '4m');
  });
  after(async () => {
    await vg?.dispose();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-lvm-live-');
  afterEach(async () => {
    await running?.stop().catch(() => undefined);
    client?.close();
    await vm?.kill();
    running = undefined;
    vm = undefined;
    client = undefined;
  });

  /** LVs for the chain (base of baseMiB; with a leaf, three volumes), the guest's raw copy, the VM and its watchers. */
  async function startOnLvs(name: string, baseMiB: number, leaf = false, connect = true): Promise<{ chain: BuiltChain; raw: string; events: QmpEvent[] }> {
    const chain = await buildLiveChain(ws.dir, {
      baseDevice: await vg.lv(`${name}-base`, baseMiB),
      topDevice: await vg.lv(`${name}-top`, 64),
      ...(leaf ? { leafDevice: await vg.lv(`${name}-leaf`, 32) } : {}),
    });
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    const events: QmpEvent[] = [];
    vm.qmp.onEvent((event) => events.push(event));
    running = watchRunning(vm.qmp);
    // The starter of the re-attach test needs the monitor: it serves one client at a time.
    if (connect) client = await QmpClient.connect(vm.socket);
    return { chain, raw, events };
  }

  /** Stops watching the VM: it must have answered 'running' every time and never stopped or seen an I/O error. */
  async function expectNeverStopped(): Promise<void> {
    const seen = await running!.stop();
    running = undefined;
    expect(seen.polls, 'query-status polls').to.be.greaterThan(3);
    expect(seen.statuses, 'every query-status answer').to.deep.equal(['running']);
    expect(seen.stops, 'STOP and BLOCK_IO_ERROR events').to.deep.equal([]);
  }

  /** Grows an LV with lvextend to at least toBytes; records the VM's state at that moment; resolves with its size. */
  function lvExtender(lv: string, statuses: string[]): (toBytes: number) => Promise<number> {
    return async (toBytes) => {
      statuses.push((await queryStatus(vm!.qmp)).status);
      await sh(['lvextend', '-q', '-L', `${Math.ceil(toBytes / MiB)}m`, `${vg.name}/${lv}`]);
      return vg.lvSize(lv);
    };
  }

  /** Quits the VM (qemu stores the bitmaps) and checks what the guest sees through image against its raw copy. */
  async function quitAndCompare(image: string, raw: string): Promise<void> {
    client!.close();
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(image, raw);
  }

  it('active merge into a base LV too small for it: lvextend during the job, the VM never paused, data and bitmaps kept', async () => {
    const { chain, raw, events } = await startOnLvs('active', 12);
    await vm!.write(0x81, 100 * MiB, MiB);
    const live = await findLiveChain(client!, { top: chain.top, base: chain.base });
    expect(live.active).to.equal(true);
    expect(live.base.storagePath).to.equal(chain.base);
    const plan = planLiveBitmaps(live);
    expect(plan.prune).to.deep.equal(['stale0', 'stale1']);

    const reasons: string[] = [];
    const statuses: string[] = [];
    // Needed is given low on purpose (base must end near 36 MiB): the job outgrows it and only the watch can keep up.
    const watch = await watchSpace(client!, live, {
      jobId: JOB,
      sizeBytes: await vg.lvSize('active-base'),
      neededBytes: 16 * MiB,
      roomBytes: 8 * MiB,
      chunkBytes: 16 * MiB,
      extend: lvExtender('active-base', statuses),
      onExtend: (_size, reason) => reasons.push(reason),
    });
    expect(reasons).to.deep.equal(['needed']);
    expect(await vg.lvSize('active-base')).to.equal(24 * MiB);
    await disableForJob(client!, live, plan);
    await pruneLiveBitmaps(client!, live, plan);
    await startCommit(client!, live, { jobId: JOB, speed: 8 * MiB });
    await vm!.write(0x82, 120 * MiB, MiB);
    expect((await findJob(client!, JOB))?.status, 'the second write landed while the job copied').to.equal('running');
    expect((await waitReady(client!, JOB, { signal: watch.failed })).status).to.equal('ready');
    await vm!.write(0x83, 140 * MiB, MiB);
    await pivotWithBitmaps(client!, live, plan, JOB);
    await vm!.write(0x84, 160 * MiB, MiB);
    expect(await closeOldTop(client!, live)).to.deep.equal({ left: [] });
    await watch.stop();
    await expectNeverStopped();
    expect(events.map((e) => e.event)).not.to.include('BLOCK_JOB_ERROR');
    await quitAndCompare(chain.base, raw);

    expect(reasons.slice(1), `extensions after the first: ${reasons.join(', ')}`).to.include('threshold');
    expect(statuses.every((status) => status === 'running'), `VM states at each extension: ${statuses.join(', ')}`).to.equal(true);
    expect(await vg.lvSize('active-base')).to.equal(watch.sizeBytes).and.to.be.greaterThan(24 * MiB);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectValidBitmaps(chain.base, KEPT);
    const writes = extentsOf(vm!.writes);
    await expectMarks(chain.base, 'toponly', { covered: [TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
    await expectMarks(chain.base, 'shared', { covered: [BASE_DATA, TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
  });

  it('internal merge on LVs: the leaf ends backed by the base LV, data and bitmaps kept, the VM never paused', async () => {
    const { chain, raw } = await startOnLvs('inner', 12, true);
    const leaf = chain.leaf ?? '';
    await vm!.write(0x91, 100 * MiB, MiB);
    const live = await findLiveChain(client!, { top: chain.top, base: chain.base });
    expect(live.active).to.equal(false);
    expect(live.above?.storagePath).to.equal(leaf);
    const plan = planLiveBitmaps(live);
    const watch = await watchSpace(client!, live, {
      jobId: JOB,
      sizeBytes: await vg.lvSize('inner-base'),
      neededBytes: 40 * MiB,
      roomBytes: 8 * MiB,
      chunkBytes: 16 * MiB,
      extend: lvExtender('inner-base', []),
    });
    await disableForJob(client!, live, plan);
    await pruneLiveBitmaps(client!, live, plan);
    await startCommit(client!, live, { jobId: JOB, speed: 1 });
    await vm!.write(0x92, 120 * MiB, MiB);
    expect((await findJob(client!, JOB))?.status).to.equal('running');
    await setSpeed(client!, JOB, 0);
    expect((await waitReady(client!, JOB, { signal: watch.failed })).status).to.equal('pending');
    await pivotWithBitmaps(client!, live, plan, JOB);
    expect(await mergedInVm(client!, live)).to.equal(true);
    await vm!.write(0x93, 140 * MiB, MiB);
    expect(await closeOldTop(client!, live)).to.deep.equal({ left: [] });
    await watch.stop();
    await expectNeverStopped();
    await quitAndCompare(leaf, raw);

    const info = JSON.parse(await sh(['qemu-img', 'info', '--output', 'json', leaf])) as { 'backing-filename'?: string };
    expect(info['backing-filename']).to.equal(chain.base);
    await expectValidBitmaps(chain.base, KEPT);
    await expectMarks(chain.base, 'toponly', { covered: [TOP_DATA], missed: [TOP_UNTRACKED] });
    await expectMarks(chain.base, 'shared', { covered: [BASE_DATA, TOP_DATA], missed: [TOP_UNTRACKED] });
    await expectMarks(leaf, 'leafmap', { covered: extentsOf(vm!.writes) });
  });

  it('through the CLI: volmerge merge --qmp grows a too-small base LV before the job, the VM never paused, data and bitmaps kept', async () => {
    const { chain, raw } = await startOnLvs('cli', 12, false, false);
    await vm!.write(0xa1, 100 * MiB, MiB);
    const cli = startCli(['merge', '--top', chain.top, '--base', chain.base, '--qmp', vm!.socket, '--state-dir', ws.path('state'), '--rate-limit', String(8 * MiB), '--json'], {});
    await waitForQemuJob(vm!.qmp, cli);
    // The extend step ran before the job: base holds the measured need plus room for the VM's writes.
    const grown = await vg.lvSize('cli-base');
    expect(grown, 'base LV grown before the job').to.be.greaterThan(12 * MiB);
    await vm!.write(0xa2, 120 * MiB, MiB);
    const run = await cli.done;
    expect(run.exitCode, run.stderr).to.equal(0);
    const result = JSON.parse(run.stdout) as { status: string; plan: { neededSize: number } };
    expect(result.status).to.equal('done');
    expect(grown, 'grown to at least the planned need').to.be.at.least(result.plan.neededSize);
    await vm!.write(0xa3, 140 * MiB, MiB);
    await expectNeverStopped();
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(chain.base, raw);
    const check = JSON.parse(await sh(['qemu-img', 'check', '--output', 'json', '-f', 'qcow2', chain.base])) as { 'image-end-offset': number };
    expect(check['image-end-offset'], 'base fits in its LV').to.be.at.most(await vg.lvSize('cli-base'));
    await expectValidBitmaps(chain.base, KEPT);
    const writes = extentsOf(vm!.writes);
    await expectMarks(chain.base, 'toponly', { covered: [TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
    await expectMarks(chain.base, 'shared', { covered: [BASE_DATA, TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
  });

  it('abort: cancel leaves the chain on the LVs as it was (top over base, data, bitmaps) and the VM running', async () => {
    const { chain, raw, events } = await startOnLvs('abort', 48);
    await vm!.write(0xa1, 100 * MiB, MiB);
    const live = await findLiveChain(client!, { top: chain.top, base: chain.base });
    const plan = planLiveBitmaps(live);
    await disableForJob(client!, live, plan);
    await pruneLiveBitmaps(client!, live, plan);
    await startCommit(client!, live, { jobId: JOB, speed: 1 });
    await vm!.write(0xa2, 120 * MiB, MiB);
    expect(await cancel(client!, live, JOB, { reenable: plan.disable })).to.equal('cancelled');
    expect(events.map((e) => e.event)).to.include('BLOCK_JOB_CANCELLED');
    expect(await mergedInVm(client!, live)).to.equal(false);
    expect(await findJob(client!, JOB)).to.equal(undefined);
    const again = await findLiveChain(client!, { top: chain.top, base: chain.base });
    expect([again.top.format, again.base.format, again.root, again.active]).to.deep.equal([live.top.format, live.base.format, live.root, true]);
    await vm!.write(0xa3, 140 * MiB, MiB);
    await expectNeverStopped();
    await quitAndCompare(chain.top, raw);

    const info = JSON.parse(await sh(['qemu-img', 'info', '--output', 'json', chain.top])) as { 'backing-filename'?: string };
    expect(info['backing-filename']).to.equal(chain.base);
    await expectValidBitmaps(chain.top, KEPT);
    await expectMarks(chain.top, 'toponly', { covered: [TOP_DATA, ...extentsOf(vm!.writes)] });
    await expectValidBitmaps(chain.base, { shared: 64 * 1024 });
    // The job's partial copy marked nothing in base: its bitmap was off meanwhile, and records again.
    await expectMarks(chain.base, 'shared', { covered: [BASE_DATA], missed: [{ offset: BASE_DATA.length, length: 256 * MiB - BASE_DATA.length }] });
  });

  it('re-attach: the merging process is killed mid-job, a second client finds the job and finishes it', async () => {
    const { chain, raw } = await startOnLvs('again', 48, false, false);
    await vm!.write(0xb1, 100 * MiB, MiB);
    const starter = execa('node', [STARTER, vm!.socket, chain.top, chain.base, JOB], { reject: false, buffer: false });
    await new Promise<void>((resolve, reject) => {
      starter.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('started') && resolve());
      void starter.then((result) => reject(new Error(`the starter exited ${result.exitCode}: ${String(result.stderr)}`)));
    });
    starter.kill('SIGKILL');
    await starter;
    await vm!.write(0xb2, 120 * MiB, MiB);
    client = await QmpClient.connect(vm!.socket);

    const live: LiveChain = await findLiveChain(client!, { top: chain.top, base: chain.base });
    expect((await findJob(client!, JOB))?.status).to.equal('running');
    const plan = planLiveBitmaps(live);
    expect(plan.prune).to.deep.equal([]);
    await disableForJob(client!, live, plan);
    await pruneLiveBitmaps(client!, live, plan);
    expect((await startCommit(client!, live, { jobId: JOB })).status).to.equal('running');
    await setSpeed(client!, JOB, 0);
    await waitReady(client!, JOB);
    await pivotWithBitmaps(client!, live, plan, JOB);
    await vm!.write(0xb3, 140 * MiB, MiB);
    expect(await closeOldTop(client!, live)).to.deep.equal({ left: [] });
    await expectNeverStopped();
    await quitAndCompare(chain.base, raw);

    await expectValidBitmaps(chain.base, KEPT);
    const writes = extentsOf(vm!.writes);
    await expectMarks(chain.base, 'toponly', { covered: [TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
    await expectMarks(chain.base, 'shared', { covered: [BASE_DATA, TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
    expect((await bitmapsIn(chain.top)).map((b) => b.flags)).to.deep.equal([['auto'], ['auto']]);
  });
});
