// Abort of a live merge with a real VM: cancel while the job copies, once it is ready (qemu then completes it without
// a pivot and says BLOCK_JOB_COMPLETED), and while an internal one waits pending. The chain is left as it was.
import { expect } from 'chai';
import { applyWrites, buildLiveChain, expectSameData, expectValidBitmaps, guestView } from '../helpers/live-chain.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { Workspace } from '../helpers/workspace.js';
import {
  cancel,
  disableForJob,
  findJob,
  findLiveChain,
  mergedInVm,
  planLiveBitmaps,
  pruneLiveBitmaps,
  QmpClient,
  setSpeed,
  startCommit,
  waitReady,
  type LiveChain,
} from '../../src/live/index.js';
import { queryJobs, queryNodes } from '../../src/live/queries.js';
import type { QmpEvent } from '../../src/qemu/qmp-client.js';

const MiB = 1024 * 1024;
const JOB = 'volmerge-live-abort';

describe('live merge: abort', function () {
  this.timeout(120_000);
  let ws: Workspace;
  let vm: LiveVm | undefined;
  let client: QmpClient | undefined;
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

  /** Starts a VM on a chain, the job (held back at one byte per second) and returns what the test needs. */
  async function startJob(leaf: boolean): Promise<{ live: LiveChain; events: QmpEvent[]; raw: string; active: string; disabled: string[] }> {
    const chain = await buildLiveChain(ws.dir, { leaf });
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    const events: QmpEvent[] = [];
    vm.qmp.onEvent((event) => events.push(event));
    client = await QmpClient.connect(vm.socket);
    const live = await findLiveChain(client, { top: chain.top, base: chain.base });
    const plan = planLiveBitmaps(live);
    await disableForJob(client, live, plan);
    await startCommit(client, live, { jobId: JOB, speed: 1 });
    await pruneLiveBitmaps(client, live, plan);
    await vm.write(0x51, 100 * MiB, MiB);
    return { live, events, raw, active: chain.layers[chain.layers.length - 1] ?? '', disabled: plan.disable };
  }

  /** Checks the chain in the VM is as before the job: same nodes in the same places, base's bitmaps recording. */
  async function expectChainAsBefore(live: LiveChain): Promise<void> {
    if (!client || !vm) throw new Error('no VM');
    expect(await mergedInVm(client, live)).to.equal(false);
    const again = await findLiveChain(client, { top: live.top.path, base: live.base.path });
    expect({ ...again, top: { ...again.top, bitmaps: [] }, base: { ...again.base, bitmaps: [] } }).to.deep.equal({
      ...live,
      top: { ...live.top, bitmaps: [] },
      base: { ...live.base, bitmaps: [] },
    });
    expect(await queryJobs(vm.qmp)).to.deep.equal([]);
    const base = (await queryNodes(vm.qmp)).find((node) => node['node-name'] === live.base.format);
    expect(base?.['dirty-bitmaps']?.map((b) => [b.name, b.recording])).to.deep.equal([['shared', true]]);
    expect(base?.ro).to.equal(true);
  }

  it('cancels a running active commit: BLOCK_JOB_CANCELLED, no pivot, the guest goes on writing to top', async () => {
    const { live, events, raw, active, disabled } = await startJob(false);
    // A wait that its signal aborts ends with 'aborted' and leaves the job running.
    const stop = new AbortController();
    const waiting = waitReady(client!, JOB, { signal: stop.signal }).then(
      () => undefined,
      (error: unknown) => error as Error & { code?: string },
    );
    stop.abort();
    expect((await waiting)?.code).to.equal('aborted');
    expect((await findJob(client!, JOB))?.status).to.equal('running');
    expect(await cancel(client!, live, JOB, { reenable: disabled })).to.equal('cancelled');
    expect(events.map((e) => e.event)).to.include('BLOCK_JOB_CANCELLED');
    await expectChainAsBefore(live);
    await vm!.write(0x52, 120 * MiB, MiB);
    expect(await cancel(client!, live, JOB)).to.equal('absent');
    client!.close();
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(active, raw);
    await expectValidBitmaps(live.base.path, { shared: 64 * 1024 });
  });

  it('cancels a ready active commit: qemu completes it WITHOUT a pivot (BLOCK_JOB_COMPLETED, not CANCELLED)', async () => {
    const { live, events, raw, active, disabled } = await startJob(false);
    await setSpeed(client!, JOB, 0);
    expect((await waitReady(client!, JOB)).status).to.equal('ready');
    expect(await cancel(client!, live, JOB, { reenable: disabled })).to.equal('cancelled');
    const ends = events.map((e) => e.event).filter((name) => name.startsWith('BLOCK_JOB_') && name !== 'BLOCK_JOB_READY');
    expect(ends).to.deep.equal(['BLOCK_JOB_COMPLETED']);
    await expectChainAsBefore(live);
    await vm!.write(0x53, 140 * MiB, MiB);
    client!.close();
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(active, raw);
    await expectValidBitmaps(live.base.path, { shared: 64 * 1024 });
  });

  it('cancels an internal commit that waits pending: the leaf stays backed by top', async () => {
    const { live, raw, active, disabled } = await startJob(true);
    await setSpeed(client!, JOB, 0);
    expect((await waitReady(client!, JOB)).status).to.equal('pending');
    expect(await cancel(client!, live, JOB, { reenable: disabled })).to.equal('cancelled');
    await expectChainAsBefore(live);
    client!.close();
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(active, raw);
    await expectValidBitmaps(live.base.path, { shared: 64 * 1024 });
  });
});
