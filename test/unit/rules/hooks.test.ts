import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseHookPolicy } from '../../../src/rules/hooks.ts';

describe('parseHookPolicy', () => {
  const cases: Array<[string, boolean, boolean, string[]]> = [
    ['', false, false, []],
    ['   ', false, false, []],
    [',,', false, false, []],
    ['hook-succeeded', true, false, []],
    ['hook-failed', false, true, []],
    ['before-hook-creation', false, false, []],
    ['hook-succeeded,hook-failed', true, true, []],
    [' hook-succeeded , hook-failed ', true, true, []],
    ['before-hook-creation,hook-succeeded', true, false, []],
    ['hook-succeeded,,hook-succeeded,', true, false, []],
    ['\thook-failed\n', false, true, []],
    ['hook-sucess', false, false, ['hook-sucess']],
    ['Hook-Succeeded', false, false, ['Hook-Succeeded']],
    ['hook-succeeded;hook-failed', false, false, ['hook-succeeded;hook-failed']],
    ['hook-succeeded hook-failed', false, false, ['hook-succeeded hook-failed']],
    ['hook-failed, delete , x', false, true, ['delete', 'x']],
  ];
  for (const [value, succeeded, failed, unknown] of cases) {
    test(JSON.stringify(value), () => {
      assert.deepEqual(parseHookPolicy(value), { succeeded, failed, unknown });
    });
  }
});

describe('parseHookPolicy properties', () => {
  const KNOWN = ['hook-succeeded', 'hook-failed', 'before-hook-creation'];
  const ws = fc.string({ unit: fc.constantFrom(' ', '\t', '\n'), maxLength: 3 });
  const item = fc.oneof(
    fc.constantFrom(...KNOWN),
    fc.string({ maxLength: 20 }).filter((s) => !s.includes(',')),
  );

  test('never throws; flags and unknowns follow the items', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(ws, item, ws), { maxLength: 8 }), (parts) => {
        const value = parts.map(([a, it, b]) => `${a}${it}${b}`).join(',');
        const items = parts.map(([, it]) => it.trim()).filter((it) => it !== '');
        const r = parseHookPolicy(value);
        assert.equal(r.succeeded, items.includes('hook-succeeded'), value);
        assert.equal(r.failed, items.includes('hook-failed'), value);
        assert.deepEqual(
          r.unknown,
          items.filter((it) => !KNOWN.includes(it)),
          value,
        );
        for (const u of r.unknown) assert.ok(u !== '' && u === u.trim() && !u.includes(','));
      }),
      { numRuns: 10_000 },
    );
  });

  test('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (value) => {
        const r = parseHookPolicy(value);
        assert.equal(typeof r.succeeded, 'boolean');
        assert.equal(typeof r.failed, 'boolean');
        assert.ok(Array.isArray(r.unknown));
        // a recognised flag can only come from the exact token being present
        if (r.succeeded) assert.ok(value.includes('hook-succeeded'));
        if (r.failed) assert.ok(value.includes('hook-failed'));
      }),
      { numRuns: 10_000 },
    );
  });
});
