import { expect } from 'chai';
import { HeaderError, parseQcow2Header } from '../../src/qemu/qcow2-header.js';
import { isPlainPath } from '../../src/merge/chain-guard.js';

interface Spec {
  version?: number;
  clusterBits?: number;
  crypt?: number;
  incompatible?: bigint;
  refcountOrder?: number;
  backing?: string;
  extensions?: { type: number; data: Buffer }[];
}

/** A qcow2 header as qemu lays it out: fields, extensions, then the backing name. */
function header(spec: Spec = {}): Buffer {
  const buffer = Buffer.alloc(65536);
  buffer.writeUInt32BE(0x514649fb, 0);
  buffer.writeUInt32BE(spec.version ?? 3, 4);
  buffer.writeUInt32BE(spec.clusterBits ?? 16, 20);
  buffer.writeBigUInt64BE(1n << 30n, 24);
  buffer.writeUInt32BE(spec.crypt ?? 0, 32);
  buffer.writeUInt32BE(8, 36);
  let offset = 72;
  if ((spec.version ?? 3) === 3) {
    buffer.writeBigUInt64BE(spec.incompatible ?? 0n, 72);
    buffer.writeUInt32BE(spec.refcountOrder ?? 4, 96);
    buffer.writeUInt32BE(112, 100);
    offset = 112;
  }
  for (const ext of spec.extensions ?? []) {
    buffer.writeUInt32BE(ext.type, offset);
    buffer.writeUInt32BE(ext.data.length, offset + 4);
    ext.data.copy(buffer, offset + 8);
    offset += 8 + Math.ceil(ext.data.length / 8) * 8;
  }
  offset += 8; // end marker
  if (spec.backing !== undefined) {
    const name = Buffer.from(spec.backing);
    buffer.writeBigUInt64BE(BigInt(offset), 8);
    buffer.writeUInt32BE(name.length, 16);
    name.copy(buffer, offset);
  }
  return buffer;
}

const backingFormat = (name: string) => ({ type: 0xe2792aca, data: Buffer.from(name) });

describe('parseQcow2Header', () => {
  it('reads the backing name and format, the cluster size and the layout bits', () => {
    const parsed = parseQcow2Header(header({ clusterBits: 17, incompatible: 1n << 4n, refcountOrder: 6, backing: '../base.qcow2', extensions: [backingFormat('raw')] }));
    expect(parsed).to.include({ version: 3, clusterSize: 131072, backingName: '../base.qcow2', backingFormat: 'raw', extendedL2: true, refcountBits: 64, cryptMethod: 0, dataFileBit: false });
    expect(parsed.unknownIncompatible).to.equal(0n);
  });

  it('sees an external data file, by its feature bit or by its extension', () => {
    expect(parseQcow2Header(header({ incompatible: 1n << 2n })).dataFileBit).to.equal(true);
    expect(parseQcow2Header(header({ extensions: [{ type: 0x44415441, data: Buffer.from('/dev/sda') }] })).dataFileName).to.equal('/dev/sda');
  });

  it('sees encryption by method or extension, unknown incompatible bits, a missing backing format', () => {
    expect(parseQcow2Header(header({ crypt: 2 })).cryptMethod).to.equal(2);
    expect(parseQcow2Header(header({ extensions: [{ type: 0x0537be77, data: Buffer.alloc(16) }] })).cryptoExtension).to.equal(true);
    expect(parseQcow2Header(header({ incompatible: 1n << 9n })).unknownIncompatible).to.equal(1n << 9n);
    expect(parseQcow2Header(header({ backing: 'base.qcow2' })).backingFormat).to.equal(null);
  });

  it('reads version 2 headers (no feature fields: refcounts of 16 bits)', () => {
    expect(parseQcow2Header(header({ version: 2, backing: '/b', extensions: [backingFormat('qcow2')] }))).to.include({ version: 2, refcountBits: 16, backingName: '/b' });
  });

  it('refuses what is not a sound header: no magic, unknown version, bad cluster bits, names with control characters', () => {
    expect(() => parseQcow2Header(Buffer.alloc(512))).to.throw(HeaderError, /no qcow2 magic/);
    expect(() => parseQcow2Header(header({ version: 4 }))).to.throw(HeaderError, /version 4/);
    expect(() => parseQcow2Header(header({ clusterBits: 30 }))).to.throw(HeaderError, /cluster_bits/);
    expect(() => parseQcow2Header(header({ backing: 'a\nb' }))).to.throw(HeaderError, /control characters/);
    expect(() => parseQcow2Header(header().subarray(0, 80))).to.throw(HeaderError, /truncated/);
  });
});

describe('isPlainPath', () => {
  it('takes file names, relative or absolute, and refuses json: and protocol names as qemu would read them', () => {
    for (const name of ['base.qcow2', '../img/base', '/dev/vg/lv', './a:b', '/x/nbd://y']) expect(isPlainPath(name), name).to.equal(true);
    for (const name of ['json:{"driver":"file"}', 'nbd://127.0.0.1:10809/x', 'http://h/x', 'ssh://h/x', 'file:base', 'nbd:unix:/s', '']) expect(isPlainPath(name), name).to.equal(false);
  });
});
