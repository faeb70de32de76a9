import { expect } from 'chai';
import { DOUBLE, INT, STRING, scanNumber, scannedNumber } from '../../src/csv/scalars.js';

/** Asserts scanNumber's kind, and that the value it hands on is Number(s) to the bit (-0 included). */
function expectValue(s: string): void {
  const kind = scanNumber(s);
  expect(kind === INT || kind === DOUBLE, `${JSON.stringify(s)} is a number`).to.equal(true);
  expect(Object.is(scannedNumber(s), Number(s)), `${JSON.stringify(s)}: ${scannedNumber(s)} vs ${Number(s)}`).to.equal(true);
}

/** A deterministic stream of numbers in [0, 1) (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('scanNumber values (the value computed while scanning is Number(s))', () => {
  it('matches Number on the edges of the exact path: signs, zeros, 15 and 16 digits, no digits before or after the point', () => {
    for (const s of [
      '0', '-0', '+0', '0.0', '-0.0', '.5', '-.5', '5.', '+5.', '1', '-1', '+7',
      '999999999999999', '-999999999999999', '9999999999999999', '1234567890123456789',
      '0.000000000000001', '0.0000000000000001', '99999999999999.9', '9999999999999.99', '1.00000000000000',
      '0.1', '0.2', '0.3', '2.675', '1.005', '1366.14', '-3053.10', '123456.789012345', '4.35', '8.675309',
      '1e5', '2.5E-3', '-1e+300', '12345678901234567890.5',
    ]) {
      expectValue(s);
    }
  });

  it('matches Number on 200,000 random decimals of 1 to 18 digits', () => {
    const next = random(20261201);
    const wrong: string[] = [];
    let numbers = 0;
    for (let n = 0; n < 200_000; n++) {
      const length = 1 + Math.floor(next() * 18);
      let digits = '';
      for (let i = 0; i < length; i++) digits += String(Math.floor(next() * 10));
      digits = digits.replace(/^0+(?=\d)/, '');
      const point = Math.floor(next() * (digits.length + 1));
      const sign = next() < 0.3 ? '-' : next() < 0.1 ? '+' : '';
      const s = next() < 0.3 ? sign + digits : `${sign}${digits.slice(0, point) || '0'}.${digits.slice(point)}`;
      const kind = scanNumber(s);
      if (kind === STRING) continue;
      numbers++;
      if (!Object.is(scannedNumber(s), Number(s))) wrong.push(s);
    }
    expect(numbers).to.be.above(150_000);
    expect(wrong).to.deep.equal([]);
  });

  it('does not hand on the value of an earlier number', () => {
    expect(scanNumber('12')).to.equal(INT);
    expect(scanNumber('1e3')).to.equal(DOUBLE);
    expect(scannedNumber('1e3')).to.equal(1000);
    expect(scanNumber('12')).to.equal(INT);
    expect(scanNumber('12345678901234567')).to.equal(INT);
    expect(scannedNumber('12345678901234567')).to.equal(Number('12345678901234567'));
  });
});
