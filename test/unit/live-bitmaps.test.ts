// The live bitmap plan and the pivot's transaction, from bitmaps as QMP reports them (pure logic).
import { expect } from 'chai';
import { planLiveBitmaps } from '../../src/live/bitmap-plan.js';
import { carryActions } from '../../src/live/bitmap-steps.js';
import type { LiveChain } from '../../src/live/chain.js';
import type { LiveBitmap } from '../../src/live/queries.js';
import { thresholdFor } from '../../src/live/space.js';

/** A persistent, recording, consistent bitmap unless told otherwise. */
function bitmap(name: string, more: Partial<LiveBitmap> = {}): LiveBitmap {
  return { name, recording: true, persistent: true, busy: false, granularity: 65536, count: 0, ...more };
}

/** An active chain top -> base with these bitmaps. */
function chainWith(top: LiveBitmap[], base: LiveBitmap[]): LiveChain {
  return {
    top: { path: '/vm/top', format: 'top-fmt', storage: 'top-sto', storagePath: '/vm/top', bitmaps: top },
    base: { path: '/vm/base', format: 'base-fmt', storage: 'base-sto', storagePath: '/vm/base', bitmaps: base },
    active: true,
    root: 'top-fmt',
    device: '/machine/peripheral/disk0/virtio-backend',
  };
}

/** The error a function throws. */
function thrown(body: () => unknown): Error & { code?: string } {
  try {
    body();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a refusal');
}

describe('planLiveBitmaps', () => {
  it('with dropInconsistent, drops the inconsistent bitmaps of top and base namesakes by name and plans the rest', () => {
    const top = [bitmap('daily', { inconsistent: true, recording: false }), bitmap('fresh'), bitmap('weekly')];
    const base = [bitmap('daily'), bitmap('weekly', { inconsistent: true }), bitmap('stale')];
    const plan = planLiveBitmaps(chainWith(top, base), { dropInconsistent: true });
    expect(plan.drop).to.deep.equal(['daily', 'weekly']);
    expect(plan.merge).to.deep.equal(['fresh']);
    expect(plan.prune).to.deep.equal(['stale']);
    expect(plan.disable).to.deep.equal([]);
    expect(thrown(() => planLiveBitmaps(chainWith(top, base))).message).to.match(/merge with --drop-inconsistent/);
  });

  it('prunes what top lacks as valid, disables the recording targets, adds top-only ones, skips disabled and temporary ones', () => {
    const top = [bitmap('shared'), bitmap('toponly', { granularity: 131072 }), bitmap('off', { recording: false }), bitmap('temp', { persistent: false })];
    const base = [bitmap('shared'), bitmap('stale'), bitmap('off'), bitmap('broken-stale', { inconsistent: true, recording: false }), bitmap('backup', { persistent: false })];
    expect(planLiveBitmaps(chainWith(top, base))).to.deep.equal({
      prune: ['broken-stale', 'off', 'stale'],
      disable: ['shared'],
      add: [{ name: 'toponly', granularity: 131072 }],
      merge: ['shared', 'toponly'],
      skipped: ['off'],
    });
  });

  it('refuses an inconsistent bitmap in top, or in base under a name top has, naming bitmap and volume', () => {
    const inTop = thrown(() => planLiveBitmaps(chainWith([bitmap('daily', { inconsistent: true, recording: false })], [])));
    expect(inTop.code).to.equal('bitmap-in-use');
    expect(inTop.message).to.match(/^bitmap daily in top \/vm\/top is inconsistent/);
    const inBase = thrown(() => planLiveBitmaps(chainWith([bitmap('daily')], [bitmap('daily', { inconsistent: true })])));
    expect(inBase.code).to.equal('bitmap-in-use');
    expect(inBase.message).to.match(/^bitmap daily in base \/vm\/base is inconsistent/);
  });

  it('refuses a bitmap that another job uses (busy)', () => {
    const busy = thrown(() => planLiveBitmaps(chainWith([bitmap('daily', { busy: true })], [])));
    expect(busy.code).to.equal('busy');
    expect(busy.message).to.contain('daily');
  });
});

describe('carryActions', () => {
  const chain = chainWith([bitmap('shared'), bitmap('toponly', { granularity: 131072 })], [bitmap('shared', { recording: false })]);
  const plan = planLiveBitmaps(chainWith(chain.top.bitmaps, [bitmap('shared')]));

  it('enables the targets, adds the missing ones with top\'s granularity, then merges each top bitmap into base', () => {
    expect(carryActions(chain, plan, chain.base.bitmaps)).to.deep.equal([
      { type: 'block-dirty-bitmap-enable', data: { node: 'base-fmt', name: 'shared' } },
      { type: 'block-dirty-bitmap-add', data: { node: 'base-fmt', name: 'toponly', persistent: true, granularity: 131072 } },
      { type: 'block-dirty-bitmap-merge', data: { node: 'base-fmt', target: 'shared', bitmaps: [{ node: 'top-fmt', name: 'shared' }] } },
      { type: 'block-dirty-bitmap-merge', data: { node: 'base-fmt', target: 'toponly', bitmaps: [{ node: 'top-fmt', name: 'toponly' }] } },
    ]);
  });

  it('only merges again when base already has every target recording (a second run)', () => {
    const done = [bitmap('shared'), bitmap('toponly', { granularity: 131072 })];
    expect(carryActions(chain, plan, done).map((action) => action.type)).to.deep.equal(['block-dirty-bitmap-merge', 'block-dirty-bitmap-merge']);
  });
});

describe('thresholdFor', () => {
  it('sits roomBytes before the end, and never at 0 (which would switch the threshold off)', () => {
    expect(thresholdFor(64 << 20, 16 << 20)).to.equal(48 << 20);
    expect(thresholdFor(8 << 20, 16 << 20)).to.equal(1);
  });
});
