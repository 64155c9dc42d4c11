// Active live merge with a real VM: top is the disk's active layer; block-commit, ready, one bitmap transaction and
// the pivot; the guest writes before, during and after the job, and base ends holding all of it.
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
import { bitmapsIn } from '../helpers/images.js';
import { Workspace } from '../helpers/workspace.js';
import {
  closeOldTop,
  disableForJob,
  findJob,
  findLiveChain,
  pivotWithBitmaps,
  planLiveBitmaps,
  pruneLiveBitmaps,
  QmpClient,
  queryStatus,
  setSpeed,
  startCommit,
  waitReady,
} from '../../src/live/index.js';

const MiB = 1024 * 1024;
const JOB = 'volmerge-live-test';

describe('live merge: active layer', function () {
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

  it('commits top into base, pivots, and base ends with the data and with bitmaps covering writes before, during and after the job', async () => {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    await vm.write(0x31, 100 * MiB, MiB);

    client = await QmpClient.connect(vm.socket);
    const live = await findLiveChain(client, { top: chain.top, base: chain.base });
    expect(live.active).to.equal(true);
    expect(live.top.format).to.equal('drive1-format');
    expect(live.base.format).to.equal('drive0-format');
    expect(live.above).to.equal(undefined);
    const plan = planLiveBitmaps(live);
    expect(plan.prune).to.deep.equal(['stale0', 'stale1']);
    expect(plan.disable).to.deep.equal(['shared']);
    expect(plan.add).to.deep.equal([{ name: 'toponly', granularity: 128 * 1024 }]);

    await disableForJob(client, live, plan);
    // One byte per second: the job copies its first chunk and then waits, so the guest's next write lands mid-job.
    await startCommit(client, live, { jobId: JOB, speed: 1 });
    await pruneLiveBitmaps(client, live, plan);
    const during = await findJob(client, JOB);
    expect(during?.status).to.equal('running');
    await vm.write(0x32, 120 * MiB, MiB);
    await setSpeed(client, JOB, 0);
    const seen: number[] = [];
    const ready = await waitReady(client, JOB, { onProgress: (job) => seen.push(job.percent) });
    expect(ready.status).to.equal('ready');
    expect(seen.every((percent, i) => i === 0 || percent >= (seen[i - 1] ?? 0)), `progress ${seen.join(',')} never goes back`).to.equal(true);
    expect(seen[seen.length - 1]).to.equal(100);
    await vm.write(0x33, 140 * MiB, MiB);

    await pivotWithBitmaps(client, live, plan, JOB);
    await vm.write(0x34, 160 * MiB, MiB);
    expect(await closeOldTop(client, live)).to.deep.equal({ left: [] });
    expect(await findJob(client, JOB)).to.equal(undefined);
    expect((await queryStatus(vm.qmp)).status).to.equal('running');
    // A second run of the last steps finds everything done and changes nothing.
    await pivotWithBitmaps(client, live, plan, JOB);
    expect(await closeOldTop(client, live)).to.deep.equal({ left: [] });
    client.close();
    await vm.quit();

    await applyWrites(raw, vm.writes);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectSameData(chain.base, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    const writes = extentsOf(vm.writes);
    await expectCovers(chain.base, 'toponly', [TOP_DATA, ...writes]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA, ...writes]);
    // The commit's own copy of top's data marked nothing: base's bitmaps did not record while the job ran.
    await expectMissing(chain.base, 'shared', TOP_UNTRACKED);
    await expectMissing(chain.base, 'toponly', TOP_UNTRACKED);
    // The old top was closed by blockdev-del: its bitmaps were stored, none is left in-use.
    expect((await bitmapsIn(chain.top)).map((b) => b.flags)).to.deep.equal([['auto'], ['auto']]);
  });
});
