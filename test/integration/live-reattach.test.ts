// Re-attach with a real VM: the process that started a live merge is killed mid-job (the job goes on inside qemu);
// a new client finds the job by its id and finishes it: ready, bitmaps, pivot.
import { expect } from 'chai';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { applyWrites, BASE_DATA, buildLiveChain, expectCovers, expectMissing, expectSameData, expectValidBitmaps, extentsOf, guestView, TOP_DATA, TOP_UNTRACKED } from '../helpers/live-chain.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
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
  setSpeed,
  startCommit,
  waitReady,
} from '../../src/live/index.js';

const MiB = 1024 * 1024;
const JOB = 'volmerge-live-reattach';
const STARTER = fileURLToPath(new URL('../helpers/live-start-job.js', import.meta.url));

describe('live merge: re-attach', function () {
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

  it('finishes, from a second process, the job of a process killed mid-job: data and bitmaps as if it had not died', async () => {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(ws.dir, chain.layers);
    await vm.write(0x61, 100 * MiB, MiB);

    const starter = execa('node', [STARTER, vm.socket, chain.top, chain.base, JOB], { reject: false, buffer: false });
    await new Promise<void>((resolve, reject) => {
      starter.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('started') && resolve());
      void starter.then((result) => reject(new Error(`the starter exited ${result.exitCode}: ${String(result.stderr)}`)));
    });
    starter.kill('SIGKILL');
    await starter;
    await vm.write(0x62, 120 * MiB, MiB);

    // The next run: the monitor is free again, and the chain still reads top -> base (a filter node sits above top).
    client = await QmpClient.connect(vm.socket);
    const live = await findLiveChain(client, { top: chain.top, base: chain.base });
    expect(live.active).to.equal(true);
    expect((await findJob(client, JOB))?.status).to.equal('running');
    const plan = planLiveBitmaps(live);
    expect(plan.prune).to.deep.equal([]);
    expect(plan.disable).to.deep.equal([]);
    // Every step again, as a step engine resuming from its journal would: each finds its work done.
    await disableForJob(client, live, plan);
    expect((await startCommit(client, live, { jobId: JOB })).status).to.equal('running');
    await pruneLiveBitmaps(client, live, plan);
    await setSpeed(client, JOB, 0);
    await waitReady(client, JOB);
    await pivotWithBitmaps(client, live, plan, JOB);
    await vm.write(0x63, 140 * MiB, MiB);
    expect(await closeOldTop(client, live)).to.deep.equal({ left: [] });
    client.close();
    await vm.quit();

    await applyWrites(raw, vm.writes);
    await expectSameData(chain.base, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA, ...extentsOf(vm.writes)]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA, ...extentsOf(vm.writes)]);
    await expectMissing(chain.base, 'shared', TOP_UNTRACKED);
  });
});
