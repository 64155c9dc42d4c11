import { expect } from 'chai';
import { lastProgress, ProgressParser } from '../../src/qemu/progress.js';
import { renderBar } from '../../src/cli/progress-bar.js';

describe('commit progress', () => {
  it('takes the last percentage of a chunk', () => {
    expect(lastProgress('    (0.00/100%)\r    (25.00/100%)\r    (50.00/100%)\r')).to.equal(50);
    expect(lastProgress('nothing here')).to.equal(undefined);
  });
  it('finds a token split across chunks', () => {
    const seen: number[] = [];
    const parser = new ProgressParser((p) => seen.push(p));
    parser.push('    (12.5');
    parser.push('0/100%)\r    (99');
    parser.push('.00/100%)\r');
    expect(seen).to.deep.equal([12.5, 99]);
  });
  it('draws a bar of fixed width', () => {
    expect(renderBar(50, 10)).to.equal('[#####-----]');
    expect(renderBar(150, 4)).to.equal('[####]');
  });
});
