// Volume.getInfo on the real agent, on a file domain: vdsm's VolumeInfo fields checked one by one against qemu-img and
// the file system, vdsm's own param names, a volume held by another process, a retired top, a raw volume, bad addresses.
import { expect } from 'chai';
import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { validatorFor } from '../../src/schema.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { untilHeldOpen } from '../helpers/wait.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, mergeParams, type DomainChain } from '../helpers/agent-harness.js';

const BLANK_UUID = '00000000-0000-0000-0000-000000000000';
const MiB = 1024 * 1024;

/** vdsm's VolumeInfo types as the README states them: ids strings, sizes integers, enums, generation 0..999. */
function expectVdsmVolumeInfo(info: Record<string, unknown>): void {
  for (const key of ['uuid', 'domain', 'image', 'parent']) expect(info[key], key).to.be.a('string').and.not.equal('');
  for (const key of ['capacity', 'apparentsize', 'truesize']) expect(Number.isSafeInteger(info[key]) && (info[key] as number) >= 0, key).to.equal(true);
  expect(info.format).to.be.oneOf(['COW', 'RAW']);
  expect(info.legality).to.be.oneOf(['LEGAL', 'ILLEGAL', 'FAKE']);
  expect(info.status).to.be.oneOf(['OK', 'ILLEGAL', 'INVALID']);
  expect(Number.isInteger(info.generation) && (info.generation as number) >= 0 && (info.generation as number) <= 999, 'generation').to.equal(true);
  expect(validatorFor('rpc-result-volume-get-info.schema.json')(info), JSON.stringify(info)).to.equal(true);
}

/** Volume.getInfo params of one volume of a chain. */
function address(chain: DomainChain, volId: string): { sd_id: string; img_id: string; vol_id: string } {
  return { sd_id: chain.subchain.sd_id, img_id: chain.subchain.img_id, vol_id: volId };
}

describe('agent: Volume.getInfo', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess;
  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));
  beforeEach(async () => {
    agent = await AgentProcess.start(workspace);
  });

  it("describes top and base with vdsm's fields: ids, parent, format, sizes, legality, generation, and their bitmaps", async () => {
    const chain = await workspace.chain({ virtualSize: '64M', stale: 1, shared: ['shared'], topOnly: ['backup'], baseDataMiB: 2, topDataMiB: 4 });
    const top = await agent.client.result<Record<string, unknown>>('Volume.getInfo', address(chain, chain.subchain.top_id));
    expectVdsmVolumeInfo(top);
    const topFile = await stat(chain.top);
    expect(top).to.deep.include({
      uuid: chain.subchain.top_id,
      domain: chain.subchain.sd_id,
      image: chain.subchain.img_id,
      parent: chain.subchain.base_id,
      format: 'COW',
      capacity: 64 * MiB,
      apparentsize: topFile.size,
      truesize: topFile.blocks * 512,
      legality: 'LEGAL',
      status: 'OK',
      generation: 0,
    });
    expect(top.bitmaps).to.deep.equal(await bitmapsIn(chain.top));
    expect((top.bitmaps as { name: string }[]).map((b) => b.name).sort()).to.deep.equal(['backup', 'shared']);

    const base = await agent.client.result<Record<string, unknown>>('Volume.getInfo', address(chain, chain.subchain.base_id));
    expectVdsmVolumeInfo(base);
    expect(base).to.deep.include({ uuid: chain.subchain.base_id, parent: BLANK_UUID, format: 'COW', apparentsize: (await stat(chain.base)).size });
    expect((base.bitmaps as { name: string }[]).map((b) => b.name).sort()).to.deep.equal(['shared', 'stale0']);

    const vdsmNames = { storagepoolID: randomUUID(), storagedomainID: chain.subchain.sd_id, imageID: chain.subchain.img_id, volumeID: chain.subchain.top_id };
    expect(await agent.client.result('Volume.getInfo', vdsmNames), "vdsm's param names").to.deep.equal(top);
    expect(await agent.client.result('Host.ping2')).to.equal(true);
  });

  it('reads a volume that another process holds open for writing (qemu-img info -U, with an explicit format)', async () => {
    const chain = await workspace.chain({ virtualSize: '64M', shared: ['shared'], topDataMiB: 1 });
    const daemon = execa('qemu-storage-daemon', ['--blockdev', `driver=file,node-name=file0,filename=${chain.top}`, '--blockdev', 'driver=qcow2,node-name=fmt0,file=file0'], {
      reject: false,
      stdin: 'ignore',
    });
    try {
      await untilHeldOpen(chain.top, () => daemon.exitCode !== null);
      const plain = await execa('qemu-img', ['info', '-f', 'qcow2', chain.top], { reject: false, stdin: 'ignore' });
      expect(String(plain.stderr), 'plain qemu-img info is refused while the daemon holds top').to.match(/lock/);
      const info = await agent.client.result<Record<string, unknown>>('Volume.getInfo', address(chain, chain.subchain.top_id));
      expect(info).to.deep.include({ parent: chain.subchain.base_id, format: 'COW', capacity: 64 * MiB });
      expect((info.bitmaps as { name: string; flags: string[] }[]).find((b) => b.name === 'shared')?.flags, 'open for writing: in-use').to.include('in-use');
    } finally {
      daemon.kill('SIGTERM');
      await daemon;
    }
  });

  it('shows a merged base at its next generation, and a retired top of an internal merge as ILLEGAL', async () => {
    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 2 });
    const childId = randomUUID();
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', chain.subchain.top_id, '-F', 'qcow2', join(dirname(chain.top), childId)]);
    const params = mergeParams(chain, undefined, { base_generation: 0 });
    await agent.client.result('SDM.merge', params);
    const job = await agent.finished(params.job_id);
    expect(job.status, JSON.stringify(job)).to.equal('done');

    const top = await agent.client.result<Record<string, unknown>>('Volume.getInfo', address(chain, chain.subchain.top_id));
    expect(top).to.deep.include({ legality: 'ILLEGAL', status: 'ILLEGAL' });
    const base = await agent.client.result<Record<string, unknown>>('Volume.getInfo', address(chain, chain.subchain.base_id));
    expect(base).to.deep.include({ legality: 'LEGAL', generation: 1 });
    const child = await agent.client.result<Record<string, unknown>>('Volume.getInfo', address(chain, childId));
    expect(child).to.deep.include({ parent: chain.subchain.base_id, legality: 'LEGAL', generation: 0 });
  });

  it('describes a raw volume as RAW, its capacity its size, without parent or bitmaps', async () => {
    const chain = await workspace.chain({ virtualSize: '64M' });
    const rawId = randomUUID();
    const rawPath = join(dirname(chain.top), rawId);
    await writeFile(rawPath, Buffer.alloc(3 * MiB, 0x5a));
    const info = await agent.client.result<Record<string, unknown>>('Volume.getInfo', address(chain, rawId));
    expectVdsmVolumeInfo(info);
    expect(info).to.deep.include({ format: 'RAW', capacity: 3 * MiB, apparentsize: 3 * MiB, parent: BLANK_UUID, legality: 'LEGAL' });
    expect(info.bitmaps).to.deep.equal([]);
  });

  it('refuses a volume outside the image, unsafe ids, and names that disagree, each with its code', async () => {
    const chain = await workspace.chain({ virtualSize: '64M' });
    const otherImage = await agent.client.call('Volume.getInfo', { ...address(chain, chain.subchain.top_id), img_id: randomUUID() });
    expect(otherImage).to.have.nested.property('error.data.name', 'not-found');
    expect(otherImage).to.have.nested.property('error.code', 3107);
    for (const bad of ['..', '../x', '', 'a/b']) {
      expect(await agent.client.call('Volume.getInfo', address(chain, bad)), bad).to.have.nested.property('error.code', -32602);
    }
    const disagree = await agent.client.call('Volume.getInfo', { ...address(chain, chain.subchain.top_id), volumeID: chain.subchain.base_id });
    expect(disagree).to.have.nested.property('error.code', -32602);
    expect(disagree).to.have.nested.property('error.message').that.contains('name different volumes');
    const missing = await agent.client.call('Volume.getInfo', { sd_id: chain.subchain.sd_id, img_id: chain.subchain.img_id });
    expect(missing).to.have.nested.property('error.message').that.contains("needs vol_id (or vdsm's volumeID)");
  });
});
