// Space during a live merge, with a real VM and base on a loop device that "extend" grows (truncate + losetup -c),
// as an LV grows by lvextend: the write threshold asks for room ahead of the job, a job that ENOSPC paused anyway is
// given room and resumed, and the VM never pauses.
import { expect } from 'chai';
import { sh } from '../helpers/commands.js';
import { applyWrites, buildLiveChain, expectSameData, expectValidBitmaps, guestView } from '../helpers/live-chain.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { Workspace } from '../helpers/workspace.js';
import {
  cancel,
  closeOldTop,
  disableForJob,
  findLiveChain,
  pivotWithBitmaps,
  planLiveBitmaps,
  pruneLiveBitmaps,
  QmpClient,
  queryStatus,
  startCommit,
  waitJob,
  mergedInVm,
  waitReady,
  watchSpace,
  type LiveChain,
} from '../../src/live/index.js';
import { queryNodes } from '../../src/live/queries.js';

const MiB = 1024 * 1024;
const JOB = 'volmerge-live-space';

describe('live merge: base grows while the VM runs', function () {
  this.timeout(180_000);
  let ws: Workspace;
  let vm: LiveVm | undefined;
  let client: QmpClient | undefined;
  before(async function () {
    if (!(await canUseLoopDevices())) this.skip();
  });
  beforeEach(async () => {
    ws = await Workspace.create('volmerge-live-');
  });
  afterEach(async () => {
    client?.close();
    await vm?.kill();
    vm = undefined;
    client = undefined;
    await ws.dispose();
  });

  /** A VM over base on a 16 MiB loop device and top with 48 MiB of data; events of the test's monitor recorded. */
  async function setUp(): Promise<{ live: LiveChain; device: string; raw: string; events: string[]; statuses: string[] }> {
    const device = await ws.blockDevice('base', 16 * MiB);
    const chain = await buildLiveChain(ws.dir, { baseDevice: device, topDataMiB: 48 });
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    const events: string[] = [];
    vm.qmp.onEvent((event) => events.push(event.event));
    client = await QmpClient.connect(vm.socket);
    const live = await findLiveChain(client, { top: chain.top, base: device });
    expect(live.base.storagePath).to.equal(device);
    return { live, device, raw, events, statuses: [] };
  }

  /** Grows the loop device's file and has the kernel see it (as lvextend would); records the VM's state at that moment. */
  function extender(device: string, statuses: string[]): (toBytes: number) => Promise<number> {
    return async (toBytes) => {
      statuses.push((await queryStatus(vm!.qmp)).status);
      await sh(['truncate', '-s', String(toBytes), ws.path('base.img')]);
      await sh(['losetup', '-c', device]);
      return Number((await sh(['blockdev', '--getsize64', device])).trim());
    };
  }

  /** Pivots, closes the old top, quits the VM and checks base: the guest's data and valid bitmaps. */
  async function finish(live: LiveChain, raw: string): Promise<void> {
    await pivotWithBitmaps(client!, live, planLiveBitmaps(live), JOB);
    await closeOldTop(client!, live);
    client!.close();
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(live.base.storagePath, raw);
    await expectValidBitmaps(live.base.storagePath, { shared: 64 * 1024, toponly: 128 * 1024 });
  }

  it('extends base ahead of the job at each write threshold, and the VM never pauses', async () => {
    const { live, device, raw, events, statuses } = await setUp();
    const plan = planLiveBitmaps(live);
    const reasons: string[] = [];
    // Needed is given low on purpose: the job must outgrow it, and only the threshold can keep up.
    const watch = await watchSpace(client!, live, {
      jobId: JOB,
      sizeBytes: 16 * MiB,
      neededBytes: 24 * MiB,
      roomBytes: 16 * MiB,
      chunkBytes: 16 * MiB,
      extend: extender(device, statuses),
      onExtend: (_size, reason) => reasons.push(reason),
    });
    expect(reasons).to.deep.equal(['needed']);
    await disableForJob(client!, live, plan);
    await pruneLiveBitmaps(client!, live, plan);
    await startCommit(client!, live, { jobId: JOB, speed: 32 * MiB });
    await vm!.write(0x71, 200 * MiB, MiB);
    await waitReady(client!, JOB, { signal: watch.failed });
    await finish(live, raw);
    await watch.stop();

    // The threshold asked first, before base was full (the job may overtake a later one: then ENOSPC is handled too).
    expect(reasons[1], `extensions: ${reasons.join(', ')}`).to.equal('threshold');
    expect(statuses.length).to.equal(reasons.length);
    expect(statuses.every((status) => status === 'running'), `VM states at each extension: ${statuses.join(', ')}`).to.equal(true);
    expect(events, 'the VM never stopped').not.to.include('STOP');
    expect(Number((await sh(['blockdev', '--getsize64', device])).trim())).to.equal(watch.sizeBytes);
  });

  it('gives room to a job that ENOSPC paused, resumes it, and the VM runs on meanwhile', async () => {
    const { live, device, raw, events, statuses } = await setUp();
    const plan = planLiveBitmaps(live);
    await disableForJob(client!, live, plan);
    await pruneLiveBitmaps(client!, live, plan);
    await startCommit(client!, live, { jobId: JOB });
    await waitJob(client!, JOB, (job) => job.ioStatus === 'nospace' && job.status === 'paused', { what: 'ENOSPC to pause the job' });
    await vm!.write(0x72, 200 * MiB, MiB);
    expect((await queryStatus(vm!.qmp)).status).to.equal('running');

    const reasons: string[] = [];
    const watch = await watchSpace(client!, live, {
      jobId: JOB,
      sizeBytes: 16 * MiB,
      neededBytes: 0,
      roomBytes: 4 * MiB,
      chunkBytes: 64 * MiB,
      extend: extender(device, statuses),
      onExtend: (_size, reason) => reasons.push(reason),
    });
    await waitReady(client!, JOB, { signal: watch.failed });
    await finish(live, raw);
    await watch.stop();

    expect(reasons).to.include('nospace');
    expect(statuses.every((status) => status === 'running'), `VM states at each extension: ${statuses.join(', ')}`).to.equal(true);
    expect(events, 'the VM never stopped').not.to.include('STOP');
  });

  it('prunes stale bitmaps before the job starts (base reopened writable), so the job filling base cannot leave the prune without room', async () => {
    const { live, device, raw, events, statuses } = await setUp();
    const plan = planLiveBitmaps(live);
    expect(plan.prune).to.deep.equal(['stale0', 'stale1']);
    await disableForJob(client!, live, plan);
    await pruneLiveBitmaps(client!, live, plan);
    const base = (await queryNodes(client!)).find((node) => node['node-name'] === live.base.format);
    expect(base?.ro, 'base reopened read-write for the prune').to.equal(false);
    expect(base?.['dirty-bitmaps']?.map((b) => b.name)).to.deep.equal(['shared']);
    // Unlimited: the job's first burst fills the 16 MiB base and ENOSPC pauses it; the stale bitmaps are gone already.
    await startCommit(client!, live, { jobId: JOB });
    await waitJob(client!, JOB, (job) => job.ioStatus === 'nospace' && job.status === 'paused', { what: 'ENOSPC to pause the job' });
    const watch = await watchSpace(client!, live, { jobId: JOB, sizeBytes: 16 * MiB, neededBytes: 0, roomBytes: 8 * MiB, chunkBytes: 64 * MiB, extend: extender(device, statuses) });
    await waitReady(client!, JOB, { signal: watch.failed });
    await finish(live, raw);
    await watch.stop();
    expect(events, 'the VM never stopped').not.to.include('STOP');
  });

  it('cancels a job that ENOSPC paused (qemu refuses that unless forced): no pivot, base read-only again', async () => {
    const { live, raw } = await setUp();
    const plan = planLiveBitmaps(live);
    await disableForJob(client!, live, plan);
    await startCommit(client!, live, { jobId: JOB });
    await waitJob(client!, JOB, (job) => job.ioStatus === 'nospace' && job.status === 'paused', { what: 'ENOSPC to pause the job' });
    expect(await cancel(client!, live, JOB, { reenable: plan.disable })).to.equal('cancelled');
    expect(await mergedInVm(client!, live)).to.equal(false);
    await vm!.write(0x73, 200 * MiB, MiB);
    client!.close();
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(live.top.path, raw);
  });
});
