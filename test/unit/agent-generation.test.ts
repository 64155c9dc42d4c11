// Base generation: VOLMERGE_GEN_<n> LV tags, and the <base>.volmerge-gen sidecar of file volumes.
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VolmergeError } from '../../src/errors.js';
import {
  assertGeneration,
  bumpGeneration,
  generationFromTags,
  generationTag,
  generationTagChange,
  nextGeneration,
  readGeneration,
  sidecarPath,
} from '../../src/storage/generation.js';

describe('agent base generation', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volmerge-gen-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('reads an LV generation from its one VOLMERGE_GEN_ tag, 0 without one', () => {
    expect(generationFromTags([], 'vg/lv')).to.equal(0);
    expect(generationFromTags(['IU_x', 'VOLMERGE_GEN_7'], 'vg/lv')).to.equal(7);
    expect(generationTag(8)).to.equal('VOLMERGE_GEN_8');
    expect(() => generationFromTags(['VOLMERGE_GEN_1', 'VOLMERGE_GEN_2'], 'vg/lv'))
      .to.throw(/several generation tags/)
      .with.property('code', 'needs-attention');
    expect(() => generationFromTags(['VOLMERGE_GEN_x'], 'vg/lv')).to.throw(VolmergeError).with.property('code', 'needs-attention');
  });

  it('keeps a file generation in a sidecar: 0 when absent, bumped atomically, mismatch refused', async () => {
    const base = join(dir, 'base');
    await writeFile(base, '');
    const holder = { kind: 'file' as const, path: base };
    expect(await readGeneration(holder)).to.equal(0);
    expect(await bumpGeneration(holder, 0)).to.equal(1);
    expect(await readFile(sidecarPath(base), 'utf8')).to.equal('1\n');
    expect(await bumpGeneration(holder, 1)).to.equal(2);
    await assertGeneration(holder, 2);
    await assertGeneration(holder, 1).then(
      () => expect.fail('accepted a stale generation'),
      (error: VolmergeError) => {
        expect(error.code).to.equal('generation-mismatch');
        expect(error.message).to.contain(`base ${base} is at generation 2, not 1`);
      },
    );
    await bumpGeneration(holder, 5).then(
      () => expect.fail('bumped from a wrong generation'),
      (error: VolmergeError) => expect(error.code).to.equal('generation-mismatch'),
    );
    expect(await readGeneration(holder)).to.equal(2);
  });

  it("runs generations 0..999 and wraps to 0, as vdsm's do", () => {
    expect(nextGeneration(0)).to.equal(1);
    expect(nextGeneration(998)).to.equal(999);
    expect(nextGeneration(999)).to.equal(0);
    expect(generationFromTags(['VOLMERGE_GEN_999'], 'vg/lv')).to.equal(999);
    expect(() => generationFromTags(['VOLMERGE_GEN_1000'], 'vg/lv'))
      .to.throw(/from 0 to 999/)
      .with.property('code', 'needs-attention');
  });

  it('moves an LV from one generation tag to the next; 0 is no tag, so a wrapped LV counts on from 0 again', () => {
    expect(generationTagChange([], 1)).to.deep.equal({ add: ['VOLMERGE_GEN_1'], remove: [] });
    expect(generationTagChange(['IU_x', 'VOLMERGE_GEN_1'], 2)).to.deep.equal({ add: ['VOLMERGE_GEN_2'], remove: ['VOLMERGE_GEN_1'] });
    const wrapped = generationTagChange(['VOLMERGE_GEN_999', 'IU_x'], nextGeneration(999));
    expect(wrapped).to.deep.equal({ add: [], remove: ['VOLMERGE_GEN_999'] });
    const after = ['IU_x'];
    expect(generationFromTags(after, 'vg/lv')).to.equal(0);
    expect(generationTagChange(after, nextGeneration(0))).to.deep.equal({ add: ['VOLMERGE_GEN_1'], remove: [] });
    expect(generationTagChange(['VOLMERGE_GEN_0'], 1), 'a stray GEN_0 tag goes too').to.deep.equal({ add: ['VOLMERGE_GEN_1'], remove: ['VOLMERGE_GEN_0'] });
  });

  it('wraps a file generation from 999 to 0 in its sidecar, and counts on from there', async () => {
    const base = join(dir, 'base');
    await writeFile(base, '');
    await writeFile(sidecarPath(base), '999\n');
    const holder = { kind: 'file' as const, path: base };
    expect(await readGeneration(holder)).to.equal(999);
    expect(await bumpGeneration(holder, 999)).to.equal(0);
    expect(await readFile(sidecarPath(base), 'utf8')).to.equal('0\n');
    expect(await bumpGeneration(holder, 0)).to.equal(1);
    await bumpGeneration(holder, 999).then(
      () => expect.fail('bumped from the generation before the wrap'),
      (error: VolmergeError) => expect(error.code).to.equal('generation-mismatch'),
    );
  });

  it('refuses a sidecar that does not hold a number', async () => {
    const base = join(dir, 'base');
    await writeFile(sidecarPath(base), 'garbage\n');
    await readGeneration({ kind: 'file', path: base }).then(
      () => expect.fail('read garbage'),
      (error: VolmergeError) => expect(error.code).to.equal('needs-attention'),
    );
  });
});
