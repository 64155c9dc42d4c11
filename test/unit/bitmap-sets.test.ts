import { expect } from 'chai';
import { decideBitmaps } from '../../src/merge/bitmap-sets.js';
import { VolmergeError } from '../../src/errors.js';
import type { BitmapInfo } from '../../src/qemu/types.js';

const bm = (name: string, flags: string[] = ['auto'], granularity = 65536): BitmapInfo => ({ name, flags, granularity });

describe('decideBitmaps', () => {
  it('prunes base bitmaps that top lacks, adds top-only ones, merges every valid top bitmap', () => {
    const decision = decideBitmaps(
      [bm('shared'), bm('toponly', ['auto'], 131072)],
      [bm('stale1'), bm('shared'), bm('stale2', ['in-use', 'auto'])],
      'top',
      'base',
    );
    expect(decision.prune).to.deep.equal(['stale1', 'stale2']);
    expect(decision.add).to.deep.equal([{ name: 'toponly', granularity: 131072 }]);
    expect(decision.merge).to.deep.equal(['shared', 'toponly']);
    expect(decision.skipped).to.deep.equal([]);
  });

  it('neither copies nor fails on a disabled top bitmap, and prunes its namesake in base', () => {
    const decision = decideBitmaps([bm('off', []), bm('on')], [bm('off')], 'top', 'base');
    expect(decision.skipped).to.deep.equal(['off']);
    expect(decision.merge).to.deep.equal(['on']);
    expect(decision.prune).to.deep.equal(['off']);
  });

  it('enables a base bitmap that top also has when it is disabled in base', () => {
    const decision = decideBitmaps([bm('b')], [bm('b', [])], 'top', 'base');
    expect(decision.enable).to.deep.equal(['b']);
    expect(decision.add).to.deep.equal([]);
  });

  it('refuses an in-use bitmap in top, naming it and the volume', () => {
    expect(() => decideBitmaps([bm('broken', ['in-use', 'auto'])], [], '/v/top', '/v/base'))
      .to.throw(VolmergeError, /top \/v\/top: bitmap broken is in-use/)
      .with.property('code', 'bitmap-in-use');
  });

  it('refuses an in-use base bitmap whose name top also has', () => {
    expect(() => decideBitmaps([bm('shared')], [bm('shared', ['in-use', 'auto'])], 'top', '/v/base'))
      .to.throw(VolmergeError, /base \/v\/base: bitmap shared is in-use/)
      .with.property('code', 'bitmap-in-use');
  });

  it('prunes, rather than refuses, an in-use base bitmap that top does not have', () => {
    expect(decideBitmaps([], [bm('old', ['in-use'])], 'top', 'base').prune).to.deep.equal(['old']);
  });

  it('with dropBitmaps merges only what base shares, drops the rest of top (broken top-only bitmaps too), prunes as always', () => {
    const decision = decideBitmaps([bm('shared'), bm('toponly'), bm('broken', ['in-use', 'auto']), bm('off', [])], [bm('shared'), bm('stale')], 'top', 'base', {
      baseHoldsBitmaps: true,
      dropBitmaps: true,
    });
    expect(decision.merge).to.deep.equal(['shared']);
    expect(decision.add).to.deep.equal([]);
    expect(decision.drop).to.deep.equal(['toponly', 'broken']);
    expect(decision.prune).to.deep.equal(['stale']);
    expect(decision.skipped).to.deep.equal(['off']);
  });

  it('still refuses a broken top bitmap that base shares when dropping: the merge would rely on it', () => {
    expect(() => decideBitmaps([bm('shared', ['in-use', 'auto'])], [bm('shared')], 'top', 'base', { baseHoldsBitmaps: true, dropBitmaps: true }))
      .to.throw(VolmergeError)
      .with.property('code', 'bitmap-in-use');
  });

  it('refuses top\'s valid bitmaps over a base that cannot hold any, and drops them all when asked', () => {
    expect(() => decideBitmaps([bm('a'), bm('b')], [], 'top', 'base', { baseHoldsBitmaps: false, whyNoBitmaps: 'is raw', dropBitmaps: false }))
      .to.throw(VolmergeError, /base base is raw, and top top has bitmap a, b/)
      .with.property('code', 'bitmaps-unsupported');
    const dropped = decideBitmaps([bm('a'), bm('b'), bm('off', [])], [], 'top', 'base', { baseHoldsBitmaps: false, dropBitmaps: true });
    expect(dropped).to.deep.include({ merge: [], add: [], prune: [], drop: ['a', 'b'], skipped: ['off'] });
  });

  it('with dropInconsistent, drops in-use bitmaps of top and base namesakes by name, and decides the rest as if they were gone', () => {
    const top = [bm('broken', ['in-use', 'auto']), bm('fresh'), bm('kept'), bm('basebroken')];
    const base = [bm('broken'), bm('kept'), bm('basebroken', ['in-use', 'auto']), bm('stale', ['in-use', 'auto'])];
    const decision = decideBitmaps(top, base, 'top', 'base', { baseHoldsBitmaps: true, dropBitmaps: false, dropInconsistent: true });
    expect(decision.inconsistent).to.deep.equal(['basebroken', 'broken']);
    expect(decision.merge).to.deep.equal(['fresh', 'kept']);
    expect(decision.add).to.deep.equal([{ name: 'fresh', granularity: 65536 }]);
    // Base's stale in-use bitmap (a name top lacks) is pruned, as without the option.
    expect(decision.prune).to.deep.equal(['stale']);
    // Without it the refusal names the option.
    expect(() => decideBitmaps(top, base, '/v/top', '/v/base')).to.throw(VolmergeError, /bitmap broken is in-use .*merge with --drop-inconsistent/);
    const clean = decideBitmaps([bm('a')], [bm('a')], 'top', 'base', { baseHoldsBitmaps: true, dropBitmaps: false, dropInconsistent: true });
    expect(clean, 'nothing to drop: no inconsistent list').not.to.have.property('inconsistent');
  });
});
