// JSON text with floats: a JsonFloat is always written with a decimal point (the engine casts progress to Double); every
// other value is written exactly as JSON.stringify writes it.
import { expect } from 'chai';
import { floatText, JsonFloat, toJsonText } from '../../src/agent/json-text.js';

describe('agent JSON text with floats', () => {
  it('writes a float with a decimal point or an exponent, and non-finite numbers as null', () => {
    expect(floatText(0)).to.equal('0.0');
    expect(floatText(100)).to.equal('100.0');
    expect(floatText(42)).to.equal('42.0');
    expect(floatText(42.5)).to.equal('42.5');
    expect(floatText(-3)).to.equal('-3.0');
    expect(floatText(0.07)).to.equal('0.07');
    expect(floatText(1e21)).to.equal('1e+21');
    expect(floatText(Number.NaN)).to.equal('null');
    expect(floatText(Number.POSITIVE_INFINITY)).to.equal('null');
  });

  it('writes JsonFloat members as floats, at any depth, and leaves integers alone', () => {
    const text = toJsonText({ a: new JsonFloat(100), b: 100, list: [new JsonFloat(0), 1, { c: new JsonFloat(12.25) }] });
    expect(text).to.equal('{"a":100.0,"b":100,"list":[0.0,1,{"c":12.25}]}');
    expect(JSON.parse(text)).to.deep.equal({ a: 100, b: 100, list: [0, 1, { c: 12.25 }] });
    expect(JSON.stringify({ p: new JsonFloat(7) }), 'JSON.stringify still sees a number').to.equal('{"p":7}');
  });

  it('writes every other value exactly as JSON.stringify does', () => {
    const samples: unknown[] = [
      null,
      true,
      'a "quoted"\nline \u0000 é',
      12,
      -0.5,
      [],
      {},
      [undefined, () => 1, Symbol('s'), null],
      { skipped: undefined, fn: () => 1, kept: 'x', nested: { arr: [1, 'two', { three: 3 }] } },
      { date: new Date(0), 'key "with" quotes': 1 },
      { jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Invalid params', data: { name: 'usage' } } },
    ];
    for (const sample of samples) expect(toJsonText(sample), JSON.stringify(sample)).to.equal(JSON.stringify(sample));
  });
});
