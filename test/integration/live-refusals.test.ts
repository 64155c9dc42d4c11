// Live merge refusals with a real VM: an inconsistent bitmap, a volume the VM does not have, a chain that differs,
// a monitor that another client holds. Each is a clear error naming the volume, and nothing changes.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { sh } from '../helpers/commands.js';
import { breakBitmaps } from '../helpers/images.js';
import { buildLiveChain } from '../helpers/live-chain.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { Workspace } from '../helpers/workspace.js';
import { findLiveChain, planLiveBitmaps, QmpClient } from '../../src/live/index.js';
import { queryJobs, queryNodes } from '../../src/live/queries.js';

/** What a promise rejected with (fails the test when it resolved). */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a refusal, but it succeeded');
}

/** The sha256 of a file's bytes. */
async function digest(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

describe('live merge: refusals', function () {
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

  it('refuses a chain with an inconsistent bitmap in top, naming it, and changes nothing', async () => {
    const chain = await buildLiveChain(ws.dir);
    await breakBitmaps(chain.top);
    const before = await digest(chain.base);
    vm = await startLiveVm(ws.dir, chain.layers);
    client = await QmpClient.connect(vm.socket);
    const nodesBefore = await queryNodes(vm.qmp);
    const live = await findLiveChain(client, { top: chain.top, base: chain.base });
    const refusal = await rejection(Promise.resolve().then(() => planLiveBitmaps(live)));
    expect(refusal.code).to.equal('bitmap-in-use');
    expect(refusal.message).to.contain(`shared in top ${chain.top}`).and.to.contain(`toponly in top ${chain.top}`).and.to.contain('inconsistent');
    expect(await queryJobs(vm.qmp)).to.deep.equal([]);
    expect(await queryNodes(vm.qmp)).to.deep.equal(nodesBefore);
    client.close();
    await vm.quit();
    expect(await digest(chain.base)).to.equal(before);
  });

  it('names the volume when the VM does not have it or its chain differs; a busy or missing monitor is a clear error', async () => {
    const chain = await buildLiveChain(ws.dir, { leaf: true });
    const elsewhere = ws.path('other.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', elsewhere, '16M']);
    vm = await startLiveVm(ws.dir, chain.layers);
    client = await QmpClient.connect(vm.socket);

    const missing = await rejection(findLiveChain(client, { top: elsewhere, base: chain.base }));
    expect(missing.code).to.equal('not-found');
    expect(missing.message).to.match(new RegExp(`^top ${elsewhere}: not open in the VM behind QMP socket .*${chain.top}`));
    const absent = await rejection(findLiveChain(client, { top: chain.top, base: ws.path('nowhere.qcow2') }));
    expect(absent.code).to.equal('not-found');
    expect(absent.message).to.contain(`base ${ws.path('nowhere.qcow2')}: no such file`);
    const skipped = await rejection(findLiveChain(client, { top: chain.leaf ?? '', base: chain.base }));
    expect(skipped.code).to.equal('bad-chain');
    expect(skipped.message).to.contain(`top ${chain.leaf}: in the VM behind`).and.to.contain(`backed by ${chain.top}`);
    // Through another spelling of the same file (a symlink) the volume is found all the same.
    await sh(['ln', '-s', chain.top, ws.path('top-link.qcow2')]);
    expect((await findLiveChain(client, { top: ws.path('top-link.qcow2'), base: chain.base })).top.format).to.equal('drive1-format');

    const busy = await rejection(QmpClient.connect(vm.socket, { greetingTimeoutMs: 1000 }));
    expect(busy.code).to.equal('busy');
    expect(busy.message).to.contain(`QMP socket ${vm.socket}`).and.to.contain('another client');
    const nothing = await rejection(QmpClient.connect(ws.path('no.qmp')));
    expect(nothing.code).to.equal('not-found');
    expect(nothing.message).to.contain('is the VM running');
  });
});
