// The agent's VM.merge with a real VM: vdsm's parameter names, the VM's monitor found as QMP_DIR/<vmID>.qmp, the job in
// Host.getJobs with progress, an agent killed mid-job that re-attaches at its next start, and Job.abort cancelling the
// block job with the chain left as it was.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentProcess, freshAgentWorkspaceEachTest, type AgentWorkspace } from '../helpers/agent-harness.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { applyWrites, BASE_DATA, buildLiveChain, expectCovers, expectSameData, expectValidBitmaps, extentsOf, guestView, TOP_DATA } from '../helpers/live-chain.js';
import { startLiveVm, type LiveVm } from '../helpers/live-vm.js';
import { queryJobs } from '../../src/live/queries.js';
import { sleep } from '../helpers/wait.js';

const MiB = 1024 * 1024;

describe('agent: VM.merge (live)', function () {
  this.timeout(150_000);
  let ws: AgentWorkspace;
  let vm: LiveVm | undefined;
  freshAgentWorkspaceEachTest((fresh) => (ws = fresh));
  afterEach(async () => {
    await vm?.kill();
    vm = undefined;
  });

  /** A live chain in a file domain (volume ids as links to its images), a VM on it, its socket as QMP_DIR/<vmID>.qmp, and an agent. */
  async function setUp(): Promise<{ agent: AgentProcess; params: Record<string, unknown>; chain: Awaited<ReturnType<typeof buildLiveChain>>; raw: string }> {
    const sdId = 'sd-live';
    const imageId = randomUUID();
    const imageDir = join(ws.domains, sdId, 'images', imageId);
    await mkdir(imageDir, { recursive: true });
    const chain = await buildLiveChain(imageDir);
    const [topId, baseId] = [randomUUID(), randomUUID()];
    await symlink('top.qcow2', join(imageDir, topId));
    await symlink('base.qcow2', join(imageDir, baseId));
    const raw = join(ws.dir, 'guest.raw');
    await guestView(chain, raw);
    vm = await startLiveVm(imageDir, chain.layers);
    const vmId = randomUUID();
    const qmpDir = join(ws.dir, 'qmp');
    await mkdir(qmpDir);
    await symlink(vm.socket, join(qmpDir, `${vmId}.qmp`));
    const agent = await AgentProcess.start(ws, ['--qmp-dir', qmpDir]);
    const params = { vmID: vmId, drive: { domainID: sdId, imageID: imageId, volumeID: topId }, baseVolUUID: baseId, topVolUUID: topId, bandwidth: 4, jobUUID: randomUUID() };
    return { agent, params, chain, raw };
  }

  /** Waits until qemu runs the agent's block job. */
  async function jobRunning(): Promise<void> {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(50)) {
      if ((await queryJobs(vm!.qmp)).some((job) => job.status === 'running')) return;
    }
    throw new Error('qemu never ran the agent\'s block job');
  }

  /** Quits the VM (qemu stores the bitmaps), then base must read as the guest saw its disk and keep both bitmaps, valid and marking top's data and every guest write. */
  async function quitAndExpectMerged(base: string, raw: string): Promise<void> {
    await vm!.quit();
    await applyWrites(raw, vm!.writes);
    await expectSameData(base, raw);
    await expectValidBitmaps(base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(base, 'toponly', [TOP_DATA, ...extentsOf(vm!.writes)]);
    await expectCovers(base, 'shared', [BASE_DATA, TOP_DATA, ...extentsOf(vm!.writes)]);
  }

  it('merges the active layer as a job of Host.getJobs with progress; the VM writes to base afterwards', async () => {
    const { agent, params, chain, raw } = await setUp();
    await vm!.write(0x81, 100 * MiB, MiB);
    expect(await agent.client.result('VM.merge', params)).to.equal(true);
    const id = params.jobUUID as string;
    await jobRunning();
    await vm!.write(0x82, 120 * MiB, MiB);
    const seen = await agent.waitFor(id, (j) => ['done', 'failed', 'aborted'].includes(j.status), 60_000, 50);
    const last = seen[seen.length - 1];
    expect(last?.status, JSON.stringify(last)).to.equal('done');
    expect(seen.some((j) => j.status === 'running' && j.progress > 0 && j.progress < 100), `progress seen: ${seen.map((j) => j.progress).join(',')}`).to.equal(true);
    await vm!.write(0x83, 140 * MiB, MiB);
    await quitAndExpectMerged(chain.base, raw);
  });

  it('re-attaches at its next start to the block job that a killed agent left: same job id, done, data and bitmaps whole', async () => {
    const { agent, params, chain, raw } = await setUp();
    await vm!.write(0x84, 100 * MiB, MiB);
    expect(await agent.client.result('VM.merge', { ...params, bandwidth: 2 })).to.equal(true);
    const id = params.jobUUID as string;
    await jobRunning();
    await agent.killHard();
    // The block job goes on inside qemu with no volmerge attached; the guest keeps writing.
    expect((await queryJobs(vm!.qmp)).map((job) => job.status)).to.include('running');
    await vm!.write(0x85, 120 * MiB, MiB);
    const again = await AgentProcess.start(ws, ['--qmp-dir', join(ws.dir, 'qmp')]);
    const seen = await again.waitFor(id, (j) => ['done', 'failed', 'aborted'].includes(j.status), 90_000, 100);
    const last = seen[seen.length - 1];
    expect(last?.status, `${JSON.stringify(last)}\n${again.stderr}`).to.equal('done');
    expect(again.stderr).to.match(/queued to finish from step/);
    expect(await queryJobs(vm!.qmp), 'no block job left').to.deep.equal([]);
    expect(await readdir(join(ws.stateDir, 'jobs')).catch(() => []), 'no journal kept').to.deep.equal([]);
    await vm!.write(0x86, 140 * MiB, MiB);
    await quitAndExpectMerged(chain.base, raw);
  });

  it('cancels the block job on Job.abort: the VM stays on top, base\'s bitmaps record again, nothing is kept', async () => {
    const { agent, params, chain, raw } = await setUp();
    expect(await agent.client.result('VM.merge', { ...params, bandwidth: 1 })).to.equal(true);
    const id = params.jobUUID as string;
    await jobRunning();
    expect(await agent.client.result('Job.abort', { job_id: id })).to.equal(true);
    const job = await agent.finished(id);
    expect(job.status, JSON.stringify(job)).to.equal('aborted');
    expect(await queryJobs(vm!.qmp), 'no block job left').to.deep.equal([]);
    expect(await readdir(join(ws.stateDir, 'jobs')).catch(() => []), 'no journal kept').to.deep.equal([]);
    await vm!.write(0x91, 100 * MiB, MiB);
    await vm!.quit();
    // The guest's disk is still top over base, and reads as the guest saw it.
    await applyWrites(raw, vm!.writes);
    await expectSameData(chain.top, raw);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    const base = await bitmapsIn(chain.base);
    expect(base.find((b) => b.name === 'shared')?.flags, 'shared records again').to.deep.equal(['auto']);
    expect((await bitmapsIn(chain.top)).map((b) => b.flags)).to.deep.equal([['auto'], ['auto']]);
  });
});
