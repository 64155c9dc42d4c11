// Space for base during a commit through libvirt: the shared space watch with libvirt's one-shot write threshold on
// the commit's base (virsh domblkthreshold vda[N], re-armed after each extension), on a base that is a loop device
// grown the way lvextend grows an LV (the LV itself is tested in the LVM test VM). The job outgrows what was given at
// first; the threshold asks for more before base is full, and the domain never pauses.
import { expect } from 'chai';
import { sh } from '../helpers/commands.js';
import { haveLibvirt, startDomain, testLibvirtd, virshTest, type TestDomain } from '../helpers/libvirt.js';
import { applyWrites, buildLiveChain, expectSameData, guestView } from '../helpers/live-chain.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { startCommit } from '../../src/libvirt/block-job.js';
import { finishCommit } from '../../src/libvirt/commit-end.js';
import { waitCopied } from '../../src/libvirt/commit-wait.js';
import { findDiskChain } from '../../src/libvirt/disk-chain.js';
import { readDomain } from '../../src/libvirt/domain-xml.js';
import { DomainEvents } from '../../src/libvirt/events.js';
import type { LibvirtRecord } from '../../src/libvirt/record.js';
import { libvirtThresholdDriver } from '../../src/libvirt/threshold.js';
import { watchThreshold } from '../../src/merge/space-watch.js';

const MiB = 1024 * 1024;

describe('live merge through libvirt: base grows while the domain runs', function () {
  this.timeout(180_000);
  let ws: Workspace;
  let domain: TestDomain | undefined;
  let events: DomainEvents | undefined;
  before(async function () {
    if (!haveLibvirt() || !(await canUseLoopDevices())) this.skip();
    await testLibvirtd();
  });
  beforeEach(async () => {
    ws = await Workspace.create('volmerge-libvirt-');
  });
  afterEach(async () => {
    await events?.stop();
    await domain?.kill();
    domain = undefined;
    events = undefined;
    await ws?.dispose();
  });

  it('extends base ahead of the commit at each threshold (re-armed on vda[N]), and the domain never pauses', async () => {
    const device = await ws.blockDevice('base', 16 * MiB);
    const chain = await buildLiveChain(ws.dir, { baseDevice: device, topDataMiB: 48 });
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    domain = await startDomain(ws.dir, chain.layers);
    const ref = { domain: domain.name, uri: domain.uri };
    const found = await findDiskChain(await readDomain(ref), ref, { top: chain.top, base: device });
    const record: LibvirtRecord = {
      domain: found.domain,
      target: found.target,
      active: true,
      topSource: found.top.sourcePath,
      baseSource: found.base.sourcePath,
      bitmaps: { prune: [], add: [], merge: [], drop: [], checkInLibvirt: [] },
      checkpoints: [],
    };
    events = DomainEvents.start(ref);
    const lifecycle: string[] = [];
    events.subscribe((event) => event.name === 'lifecycle' && lifecycle.push(event.detail));
    const reasons: string[] = [];
    const states: string[] = [];
    const watch = await watchThreshold(libvirtThresholdDriver(ref, record, events), {
      sizeBytes: 16 * MiB,
      // Needed is given low on purpose: the job must outgrow it, and only the threshold can keep up.
      neededBytes: 24 * MiB,
      roomBytes: 16 * MiB,
      chunkBytes: 16 * MiB,
      extend: async (toBytes) => {
        states.push((await virshTest(['domstate', domain?.name ?? ''])).trim());
        await sh(['truncate', '-s', String(toBytes), ws.path('base.img')]);
        await sh(['losetup', '-c', device]);
        return Number((await sh(['blockdev', '--getsize64', device])).trim());
      },
      onExtend: (_size, reason) => reasons.push(reason),
    });
    expect(reasons).to.deep.equal(['needed']);
    await startCommit(ref, found, { bandwidthBytes: 8 * MiB });
    await domain.write(0x71, 200 * MiB, MiB);
    const end = await waitCopied(ref, record, events, { signal: watch.failed }).catch((error: Error) => `${error.message} (extensions: ${reasons.join(', ')})`);
    expect(end).to.equal('ready');
    await finishCommit(ref, record, events);
    await watch.stop();
    expect(reasons[1], `extensions: ${reasons.join(', ')}`).to.equal('threshold');
    expect(states.every((state) => state === 'running'), `domain states at each extension: ${states.join(', ')}`).to.equal(true);
    expect(lifecycle.filter((detail) => /Suspended/.test(detail)), 'the domain never paused').to.deep.equal([]);
    expect(Number((await sh(['blockdev', '--getsize64', device])).trim())).to.equal(watch.sizeBytes);
    await domain.stop();
    await applyWrites(raw, domain.writes);
    await expectSameData(device, raw);
  });
});
