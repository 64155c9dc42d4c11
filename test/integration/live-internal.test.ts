// Internal live merge with a real VM: top lies between base and the disk's active layer (leaf); block-commit of top
// into base waits pending, one bitmap transaction, job-finalize, and the leaf ends backed by base.
import { expect } from 'chai';
import { sh } from '../helpers/commands.js';
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
} from '../helpers/live-chain.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { Workspace } from '../helpers/workspace.js';
import {
  closeOldTop,
  disableForJob,
  findJob,
  findLiveChain,
  mergedInVm,
  pivotWithBitmaps,
  planLiveBitmaps,
  pruneLiveBitmaps,
  QmpClient,
  setSpeed,
  startCommit,
  waitReady,
} from '../../src/live/index.js';

const MiB = 1024 * 1024;
const JOB = 'volmerge-live-internal';

describe('live merge: inner volume', function () {
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

  it('commits top into base under a running leaf, which ends backed by base by the same relative name, with data and bitmaps right', async () => {
    const chain = await buildLiveChain(ws.dir, { leaf: true });
    const leaf = chain.leaf ?? '';
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    await vm.write(0x41, 100 * MiB, MiB);

    client = await QmpClient.connect(vm.socket);
    const live = await findLiveChain(client, { top: chain.top, base: chain.base });
    expect(live.active).to.equal(false);
    expect(live.above?.format).to.equal('drive2-format');
    expect(live.root).to.equal('drive2-format');
    const plan = planLiveBitmaps(live);

    await disableForJob(client, live, plan);
    await startCommit(client, live, { jobId: JOB, speed: 1 });
    // A second start finds the job and starts nothing.
    expect((await startCommit(client, live, { jobId: JOB })).status).to.equal('running');
    await pruneLiveBitmaps(client, live, plan);
    expect((await findJob(client, JOB))?.status).to.equal('running');
    await vm.write(0x42, 120 * MiB, MiB);
    await setSpeed(client, JOB, 0);
    expect((await waitReady(client, JOB)).status).to.equal('pending');
    expect(await mergedInVm(client, live)).to.equal(false);

    await pivotWithBitmaps(client, live, plan, JOB);
    expect(await mergedInVm(client, live)).to.equal(true);
    await vm.write(0x43, 140 * MiB, MiB);
    expect(await closeOldTop(client, live)).to.deep.equal({ left: [] });
    // Closed in the VM: top is no longer locked, qemu-img opens it without -U.
    await sh(['qemu-img', 'info', chain.top]);
    client.close();
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
  });
});
