// Pure logic of the way in through libvirt, on outputs recorded from libvirt 9.0 (Debian 12): the live XML read into
// a disk's chain, `blockjob --info --raw`, `virsh event` lines, checkpoint XML, and the bitmap rules (what libvirt
// would drop silently is refused or dropped as asked; a prune that a checkpoint's delete would make beyond base is refused).
import { expect } from 'chai';
import { parseJobInfo } from '../../src/libvirt/block-job.js';
import { bitmapOnDisk } from '../../src/libvirt/checkpoint-xml.js';
import { parseDomainXml } from '../../src/libvirt/domain-xml.js';
import { parseEventLine, thresholdLayer } from '../../src/libvirt/events.js';
import { planLibvirtBitmaps, type LayerBitmaps } from '../../src/libvirt/bitmap-plan.js';

const LIVE_XML = `<domain type='qemu' id='2'>
  <name>vm1</name>
  <uuid>d673a25b-8ace-4381-b8dd-ff29bb0b9575</uuid>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/images/leaf.qcow2' index='1'/>
      <backingStore type='block' index='2'>
        <format type='qcow2'/>
        <source dev='/dev/vg0/top'/>
        <backingStore type='file' index='3'>
          <format type='qcow2'/>
          <source file='/images/a&amp;b.qcow2'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <mirror type='file' job='active-commit' ready='yes'>
        <source file='/images/a&amp;b.qcow2' index='3'/>
      </mirror>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
    </disk>
  </devices>
</domain>`;

describe('libvirt: parsing what virsh prints', () => {
  it('reads the live XML into each disk\'s chain, active layer first, with backing indices and the mirror', () => {
    const facts = parseDomainXml(LIVE_XML, 'test');
    expect(facts).to.deep.include({ name: 'vm1', uuid: 'd673a25b-8ace-4381-b8dd-ff29bb0b9575', running: true });
    expect(facts.disks[0]).to.deep.equal({
      target: 'vda',
      device: 'disk',
      layers: [
        { index: 1, type: 'file', path: '/images/leaf.qcow2', format: 'qcow2' },
        { index: 2, type: 'block', path: '/dev/vg0/top', format: 'qcow2' },
        { index: 3, type: 'file', path: '/images/a&b.qcow2', format: 'qcow2' },
      ],
      mirror: { job: 'active-commit', ready: true },
    });
    expect(facts.disks[1]).to.deep.equal({ target: 'sda', device: 'cdrom', layers: [] });
  });

  it('refuses XML that is not a domain (schema) or not XML', () => {
    expect(() => parseDomainXml('<domain><name>x</name></domain>', 'test')).to.throw(/does not match libvirt-domain\.schema\.json/);
    expect(() => parseDomainXml("<domain id='x'><name>x</name><uuid>u</uuid></domain>", 'test')).to.throw(/libvirt-domain\.schema\.json/);
    expect(() => parseDomainXml('<domain><name>x</nam', 'test')).to.throw(/not well-formed XML|does not match/);
  });

  it('reads blockjob --info --raw, and no job as undefined', () => {
    expect(parseJobInfo(' type=Active Block Commit\n bandwidth=2\n cur=17825792\n end=22020096\n', 'test')).to.deep.equal({ type: 'Active Block Commit', bandwidth: 2, cur: 17825792, end: 22020096 });
    expect(parseJobInfo('\n', 'test')).to.equal(undefined);
    expect(parseJobInfo('No current block job for vda\n', 'test')).to.equal(undefined);
    expect(() => parseJobInfo(' type=Block Commit\n cur=x\n', 'test')).to.throw(/expected type, cur, end and bandwidth/);
  });

  it('reads virsh event lines, with and without timestamps, and a threshold event\'s layer', () => {
    const ready = parseEventLine("event 'block-job-2' for domain 'vm 1': Active Block Commit for vda ready");
    expect(ready).to.deep.equal({ name: 'block-job-2', detail: 'Active Block Commit for vda ready' });
    const threshold = parseEventLine("2026-12-05 07:24:46.338+0000: event 'block-threshold' for domain 'D': dev: vda[3](/images/base.qcow2) 27262976 262144");
    expect(threshold && thresholdLayer(threshold)).to.equal('vda[3]');
    expect(parseEventLine('events received: 2')).to.equal(undefined);
  });

  it('reads the bitmap a checkpoint has on a disk', () => {
    const xml = "<domaincheckpoint><name>c1</name><disks><disk name='vda' checkpoint='bitmap' bitmap='c1'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>";
    expect(bitmapOnDisk(xml, 'vda', 'test')).to.equal('c1');
    expect(bitmapOnDisk(xml, 'vdb', 'test')).to.equal(undefined);
    expect(bitmapOnDisk(xml, 'vdc', 'test')).to.equal(undefined);
  });
});

/** A layer with bitmaps given as name:flags ('a' auto, 'u' in-use). */
function layer(path: string, bitmaps: Record<string, string>, options: { active?: boolean; checkpointed?: string[] } = {}): LayerBitmaps {
  return {
    path,
    active: options.active ?? false,
    checkpointed: options.checkpointed ?? [],
    bitmaps: Object.entries(bitmaps).map(([name, flags]) => ({
      name,
      granularity: 65536,
      flags: [...(flags.includes('a') ? ['auto'] : []), ...(flags.includes('u') ? ['in-use'] : [])],
    })),
  };
}

describe('libvirt: the bitmap plan', () => {
  it('carries what libvirt carries, adds what base lacks, prunes base\'s stale ones, and asks libvirt about an active top', () => {
    const plan = planLibvirtBitmaps({
      layers: [layer('top', { shared: 'au', toponly: 'au' }, { active: true, checkpointed: ['daily'] }), layer('base', { shared: 'a', stale: 'a' })],
      topAt: 0,
      checkpoints: ['daily'],
      dropBitmaps: false,
    });
    expect(plan).to.deep.equal({
      prune: ['stale'],
      add: [
        { name: 'daily', granularity: 65536 },
        { name: 'toponly', granularity: 65536 },
      ],
      merge: ['daily', 'shared', 'toponly'],
      drop: [],
      checkInLibvirt: ['daily', 'shared', 'toponly'],
    });
  });

  it('refuses what libvirt would drop silently: disabled in top, disabled in base, a gap below; inconsistent as in-use', () => {
    const refuse = (layers: LayerBitmaps[], pattern: RegExp, code = 'unsupported'): void => {
      expect(() => planLibvirtBitmaps({ layers, topAt: 1, checkpoints: [], dropBitmaps: false }))
        .to.throw(pattern)
        .with.property('code', code);
    };
    refuse([layer('leaf', {}, { active: true }), layer('top', { x: '' }), layer('base', {})], /bitmap x of top top: it is disabled in top, so libvirt would drop it silently/);
    refuse([layer('leaf', {}, { active: true }), layer('top', { x: 'a' }), layer('base', { x: '' })], /it is disabled in base.*enable it in base/);
    refuse([layer('leaf', {}, { active: true }), layer('top', { x: 'a' }), layer('base', {}), layer('old', { x: 'a' })], /missing in a layer above old/);
    refuse([layer('leaf', {}, { active: true }), layer('top', { x: 'au' }), layer('base', {})], /inconsistent \(in-use\) in top/, 'bitmap-in-use');
  });

  it('drops as asked (--drop-bitmaps) what libvirt would drop and base lacks', () => {
    const plan = planLibvirtBitmaps({ layers: [layer('leaf', {}, { active: true }), layer('top', { x: '', y: 'a' }), layer('base', {})], topAt: 1, checkpoints: [], dropBitmaps: true });
    expect(plan).to.deep.include({ merge: ['y'], drop: ['x'], prune: [], checkInLibvirt: [] });
  });

  it('refuses a prune that would remove the bitmap beyond base, or a checkpoint of the domain\'s own', () => {
    expect(() => planLibvirtBitmaps({ layers: [layer('leaf', { s: 'au' }, { active: true }), layer('top', {}), layer('base', { s: 'a' })], topAt: 1, checkpoints: [], dropBitmaps: false })).to.throw(
      /stale bitmap s is also in leaf, which stays in the chain/,
    );
    expect(() => planLibvirtBitmaps({ layers: [layer('top', {}, { active: true }), layer('base', { s: 'a' })], topAt: 0, checkpoints: ['s'], dropBitmaps: false })).to.throw(
      /belongs to the domain's checkpoint s/,
    );
  });
});
