// Hostile or unsupported image headers: refused with unsupported-image before anything changes, the one-line message
// naming the volume and the reason, every byte (and mtime) of every file involved as before, no network address tried.
import { expect } from 'chai';
import { parseAgainst } from '../../src/schema.js';
import { sh } from '../helpers/commands.js';
import { createEncrypted, setBacking } from '../helpers/hostile-images.js';
import { buildLayoutChain, denseRanges, writeRanges } from '../helpers/layout-chain.js';
import { expectRefused } from '../helpers/merge-result.js';
import { removeBackingFormat } from '../helpers/qcow2-header.js';
import { TcpSentinel } from '../helpers/tcp-sentinel.js';
import { Workspace } from '../helpers/workspace.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;

/** A chain to refuse: the volumes to merge, every file whose bytes must not change, which volume(s) the message may name. */
interface Hostile {
  top: string;
  base: string;
  watched: string[];
  named: string[];
}

describe('real chains: hostile and unsupported headers are refused before any change', function () {
  this.timeout(120_000);
  let ws: Workspace;
  let sentinel: TcpSentinel;

  beforeEach(async () => {
    ws = await Workspace.create('volmerge-hostile-');
    sentinel = await TcpSentinel.listen();
  });
  afterEach(async () => {
    await sentinel?.close();
    await ws?.dispose();
  });

  /** A plain two-volume chain (data and a shared bitmap in both), to be made hostile afterwards. */
  async function plainChain(): Promise<{ top: string; base: string }> {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await buildLayoutChain(base, top, { virtualSize: SIZE, baseData: denseRanges(0, 4 * MiB), shared: ['shared'], topData: denseRanges(8 * MiB, 4 * MiB) });
    return { top, base };
  }

  /** Expects unsupported-image naming one of `named` and matching the reason, with nothing changed and nothing contacted. */
  async function expectUnsupported(chain: Hostile, reasons: RegExp[]): Promise<void> {
    const message = await expectRefused(['--top', chain.top, '--base', chain.base], 'unsupported-image', reasons, chain.watched);
    expect(
      chain.named.some((path) => message.includes(path)),
      `the message names ${chain.named.join(' or ')}: ${message}`,
    ).to.equal(true);
    expect(sentinel.connections, 'no connection to an address from an image header').to.equal(0);
  }

  it('refuses a top with an external data file, which is never opened for writing', async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    const data = ws.path('top.data');
    await buildLayoutChain(base, ws.path('unused-top.qcow2'), { virtualSize: SIZE, baseData: denseRanges(0, 4 * MiB) });
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', '-o', `data_file=${data}`, top]);
    await writeRanges(top, 'qcow2', denseRanges(8 * MiB, 4 * MiB), 0x5a);
    await expectUnsupported({ top, base, watched: [top, data, base], named: [top] }, [/data[-_ ]?file/i]);
  });

  it('refuses a base with an external raw data file, which is never opened for writing', async () => {
    const base = ws.path('base.qcow2');
    const data = ws.path('base.data');
    const top = ws.path('top.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', `data_file=${data},data_file_raw=on`, base, String(SIZE)]);
    await writeRanges(base, 'qcow2', denseRanges(0, 4 * MiB), 0x11);
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    await writeRanges(top, 'qcow2', denseRanges(8 * MiB, 4 * MiB), 0x5a);
    await expectUnsupported({ top, base, watched: [top, base, data], named: [base] }, [/data[-_ ]?file/i]);
  });

  const backingNames: [string, (port: number, base: string) => string][] = [
    ['a json: backing name (even one that opens base)', (_port, base) => `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: base } })}`],
    ['an nbd:// backing name', (port) => `nbd://127.0.0.1:${port}/export`],
    ['an http:// backing name', (port) => `http://127.0.0.1:${port}/base.qcow2`],
    ['an ssh:// backing name', (port) => `ssh://127.0.0.1:${port}/base.qcow2`],
  ];
  for (const [what, backingName] of backingNames) {
    it(`refuses ${what} in top, without contacting it`, async () => {
      const chain = await plainChain();
      await setBacking(chain.top, backingName(sentinel.port, chain.base));
      await expectUnsupported({ ...chain, watched: [chain.top, chain.base], named: [chain.top] }, [/json|nbd|http|ssh|protocol|plain path/i]);
    });
  }

  it('refuses a LUKS-encrypted top', async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await buildLayoutChain(base, ws.path('unused-top.qcow2'), { virtualSize: SIZE, baseData: denseRanges(0, 4 * MiB), shared: ['shared'] });
    await createEncrypted(top, { backing: base });
    await expectUnsupported({ top, base, watched: [top, base], named: [top] }, [/encrypt|luks/i]);
  });

  it('refuses a LUKS-encrypted base', async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await createEncrypted(base, { size: SIZE });
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top, String(SIZE)]);
    await expectUnsupported({ top, base, watched: [top, base], named: [base] }, [/encrypt|luks/i]);
  });

  it('refuses a chain that loops (base backed by top)', async () => {
    const chain = await plainChain();
    await setBacking(chain.base, chain.top);
    await expectUnsupported({ ...chain, watched: [chain.top, chain.base], named: [chain.top, chain.base] }, [/loop|cycle|circular/i]);
  });

  it('refuses a chain that loops below base (base -> x -> base)', async () => {
    const chain = await plainChain();
    const x = ws.path('x.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', x, String(SIZE)]);
    await setBacking(chain.base, x);
    await setBacking(x, chain.base);
    await expectUnsupported({ ...chain, watched: [chain.top, chain.base, x], named: [chain.top, chain.base, x] }, [/loop|cycle|circular/i]);
  });

  it('refuses a top that records no backing format, telling how to set it', async () => {
    const chain = await plainChain();
    await removeBackingFormat(chain.top);
    const info = parseAgainst<Record<string, unknown>>('qemu-img-info.schema.json', await sh(['qemu-img', 'info', '--output', 'json', '-f', 'qcow2', chain.top]), 'qemu-img info');
    expect(info['backing-filename'], 'the header still names base').to.equal(chain.base);
    expect(info['backing-filename-format'], 'but no backing format').to.equal(undefined);
    await expectUnsupported({ ...chain, watched: [chain.top, chain.base], named: [chain.top] }, [/backing format/i, /qemu-img rebase\b.* -F /]);
  });
});
