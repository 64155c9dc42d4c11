// both(): two tasks at once, but nothing left running when it returns or throws, and the first task's failure wins.
import { expect } from 'chai';
import { both } from '../../src/both.js';

function after<T>(ms: number, value: T, fail = false): Promise<T> {
  return new Promise((resolve, reject) => setTimeout(() => (fail ? reject(new Error(String(value))) : resolve(value)), ms));
}

describe('both', () => {
  it('returns both results in order', async () => {
    expect(await both(after(20, 'a'), after(5, 'b'))).to.deep.equal(['a', 'b']);
  });

  it('throws only once the other task has ended too', async () => {
    let slowEnded = false;
    const slow = after(40, 'slow').then((v) => {
      slowEnded = true;
      return v;
    });
    const error = await both(after(1, 'fast failure', true), slow).catch((e: Error) => e);
    expect(error).to.be.instanceOf(Error).with.property('message', 'fast failure');
    expect(slowEnded, 'the slow task ended before both() threw').to.equal(true);
  });

  it("throws the first task's failure when both fail, whichever failed first", async () => {
    const error = await both(after(30, 'first task', true), after(1, 'second task', true)).catch((e: Error) => e);
    expect(error).to.have.property('message', 'first task');
  });
});
