import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatDuration, MAX_TTL_SECONDS, parseDuration } from '../../../src/rules/duration.ts';

const RUNS = 10_000;

describe('parseDuration: valid', () => {
  const cases: Array<[string, number]> = [
    ['0', 0],
    ['+0', 0],
    ['0s', 0],
    ['0w', 0],
    ['  0  ', 0],
    ['90s', 90],
    ['5m', 300],
    ['3h', 10_800],
    ['4d', 345_600],
    ['2w', 1_209_600],
    ['1h30m', 5_400],
    ['1.5h', 5_400],
    ['.5m', 30],
    ['1.m', 60],
    ['0.1h', 360],
    ['1w1d1h1m1s', 604_800 + 86_400 + 3_600 + 60 + 1],
    ['1s1h', 3_601], // any order, as Go
    ['1m1m', 120], // repeated unit, as Go
    ['0.5s1.5s', 2], // fractions that add up to whole seconds
    ['\t7d\n', 604_800],
    ['+5m', 300],
    ['007s', 7],
    ['2147483647s', MAX_TTL_SECONDS],
    ['3550w5d3h14m7s', MAX_TTL_SECONDS],
    ['35791394m7s', MAX_TTL_SECONDS],
  ];
  for (const [input, seconds] of cases) {
    test(JSON.stringify(input), () => {
      assert.deepEqual(parseDuration(input), { ok: true, seconds });
    });
  }
});

describe('parseDuration: invalid', () => {
  // [input, a fragment the one-sentence error must contain]
  const cases: Array<[string, string]> = [
    ['', 'empty'],
    ['   ', 'empty'],
    ['90', 'missing unit after "90" (use s, m, h, d or w, e.g. "90s")'],
    ['1h30', 'missing unit after "30"'],
    ['1.5', 'missing unit'],
    ['00', 'missing unit'],
    ['5ms', 'unknown unit "ms" (use s, m, h, d or w)'],
    ['5us', 'unknown unit "us"'],
    ['5µs', 'unknown unit "µs"'],
    ['5ns', 'unknown unit "ns"'],
    ['1y', 'unknown unit "y"'],
    ['1H', 'unknown unit "H"'],
    ['1D', 'unknown unit "D"'],
    ['7days', 'unknown unit "days"'],
    ['1e3s', 'unknown unit "e"'],
    ['1h-30m', 'unknown unit "h-"'],
    ['-5m', 'must not be negative'],
    ['-0', 'must not be negative'],
    ['  -1s', 'must not be negative'],
    ['abc', 'expected a number'],
    ['h', 'expected a number'],
    ['+', 'expected a number'],
    ['.', 'expected a number'],
    ['.s', 'expected a number'],
    ['1h.', 'expected a number'],
    ['--5m', 'must not be negative'],
    ['1h 30m', 'must not contain spaces'],
    ['1.5s', 'not a whole number of seconds'],
    ['0.1s', 'not a whole number of seconds'],
    ['1.0000000001h', 'not a whole number of seconds'],
    ['2147483648s', 'longer than the maximum of 2147483647 seconds'],
    ['3551w', 'longer than the maximum'],
    ['100000000000000000000000000000w', 'longer than the maximum'],
    ['１s', 'expected a number'], // full-width digit
    ['9'.repeat(200), 'longer than 128 characters'],
  ];
  for (const [input, fragment] of cases) {
    test(JSON.stringify(input), () => {
      const r = parseDuration(input);
      assert.equal(r.ok, false, `expected an error for ${JSON.stringify(input)}`);
      if (r.ok) return;
      assert.ok(
        r.error.includes(fragment),
        `error ${JSON.stringify(r.error)} lacks ${JSON.stringify(fragment)}`,
      );
      assert.ok(r.error.startsWith('invalid duration "'), `error names the input: ${r.error}`);
      assert.ok(!r.error.includes('\n'), 'one line');
    });
  }

  test('errors quote control characters escaped and cut long inputs', () => {
    const r = parseDuration(`5x${'y'.repeat(100)}\u0007`);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.ok(r.error.includes('…'));
    assert.ok(r.error.length < 300);
    const c = parseDuration('5\u0001');
    assert.ok(!c.ok && c.error.includes('\\u0001'));
  });
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [1, '1s'],
    [59, '59s'],
    [60, '1m'],
    [90, '1m30s'],
    [5_400, '1h30m'],
    [86_400, '1d'],
    [345_600, '4d'],
    [604_800, '1w'],
    [1_209_600, '2w'],
    [694_861, '1w1d1h1m1s'],
    [MAX_TTL_SECONDS, '3550w5d3h14m7s'],
  ];
  for (const [seconds, text] of cases) {
    test(`${seconds} → ${text}`, () => assert.equal(formatDuration(seconds), text));
  }

  test('rejects negative, fractional and non-finite input', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => formatDuration(bad), RangeError, String(bad));
    }
  });
});

describe('duration properties', () => {
  test('parse(format(n)) === n for every integer 0..MAX_TTL_SECONDS', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TTL_SECONDS }), (n) => {
        assert.deepEqual(parseDuration(formatDuration(n)), { ok: true, seconds: n });
      }),
      { numRuns: RUNS, examples: [[0], [1], [59], [60], [MAX_TTL_SECONDS], [MAX_TTL_SECONDS - 1]] },
    );
  });

  test('format is canonical: units in order, each part below its carry', () => {
    const canonical =
      /^(?:0s|(?:([1-9]\d*)w)?(?:([1-6])d)?(?:([1-9]|1\d|2[0-3])h)?(?:([1-9]|[1-5]\d)m)?(?:([1-9]|[1-5]\d)s)?)$/;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TTL_SECONDS }), (n) => {
        const text = formatDuration(n);
        assert.match(text, canonical);
        assert.notEqual(text, '');
      }),
      { numRuns: RUNS },
    );
  });

  test('never throws; an ok result is always a whole number of seconds within range', () => {
    const alphabet = fc.constantFrom(...'0123456789.+-smhdwyuµnMHDW \t,:eE'.split(''));
    const arb = fc.oneof(
      fc.string(),
      fc.string({ unit: alphabet, maxLength: 24 }),
      fc.string({ unit: 'grapheme' }),
    );
    fc.assert(
      fc.property(arb, (text) => {
        const r = parseDuration(text);
        if (r.ok) {
          assert.ok(Number.isInteger(r.seconds) && r.seconds >= 0 && r.seconds <= MAX_TTL_SECONDS, text);
          assert.ok(!text.trim().startsWith('-'), `negative accepted: ${text}`);
        } else {
          assert.equal(typeof r.error, 'string');
          assert.ok(r.error.startsWith('invalid duration '), r.error);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('generated well-formed sums parse to their exact value, or are rejected for range/fraction', () => {
    const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
    // A component: integer part, optional tenths, unit. Value kept exactly as tenths of seconds.
    const component = fc.record({
      int: fc.integer({ min: 0, max: 5000 }),
      tenths: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
      unit: fc.constantFrom('s', 'm', 'h', 'd', 'w'),
    });
    fc.assert(
      fc.property(fc.array(component, { minLength: 1, maxLength: 5 }), (parts) => {
        const text = parts
          .map((p) => `${p.int}${p.tenths === undefined ? '' : `.${p.tenths}`}${p.unit}`)
          .join('');
        const tenthsTotal = parts.reduce(
          (sum, p) => sum + (p.int * 10 + (p.tenths ?? 0)) * (unitSeconds[p.unit] ?? Number.NaN),
          0,
        );
        const r = parseDuration(text);
        const fractional = tenthsTotal % 10 !== 0;
        const tooLong = tenthsTotal / 10 > MAX_TTL_SECONDS;
        if (fractional && tooLong) {
          // Either reason is a correct rejection (the range check may stop parsing early).
          assert.ok(!r.ok && /not a whole number|longer than the maximum/.test(r.error), text);
        } else if (fractional) {
          assert.ok(!r.ok && r.error.includes('not a whole number'), text);
        } else if (tooLong) {
          assert.ok(!r.ok && r.error.includes('longer than the maximum'), text);
        } else {
          assert.deepEqual(r, { ok: true, seconds: tenthsTotal / 10 }, text);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('a unit-less non-zero number is always rejected as missing its unit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (n) => {
        const r = parseDuration(String(n));
        assert.ok(!r.ok && r.error.includes('missing unit'));
      }),
      { numRuns: 1000 },
    );
  });
});
