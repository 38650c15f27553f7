// The collector's pure parts: last lines, UTF-8-safe cut, "never started", Event mapping.
// Its requests run against the real control plane in test/integration/archive-collector.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  countNewlines,
  cutAt,
  lastLines,
  notStarted,
  toArchivedEvent,
} from '../../../src/archive/collector.ts';

describe('lastLines', () => {
  test('keeps the last n lines and says whether any were dropped', () => {
    assert.deepEqual(lastLines('a\nb\nc\n', 2), { text: 'b\nc\n', dropped: true });
    assert.deepEqual(lastLines('a\nb\n', 2), { text: 'a\nb\n', dropped: false });
    assert.deepEqual(lastLines('', 2), { text: '', dropped: false });
    assert.deepEqual(lastLines('a\nb\nc', 1), { text: 'c', dropped: true });
  });

  test('property: the result is a suffix of at most n lines, dropped iff shorter than the input', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string().map((s) => s.replaceAll('\n', ' ')),
          { maxLength: 30 },
        ),
        fc.integer({ min: 1, max: 40 }),
        (lines, n) => {
          const text = lines.map((l) => `${l}\n`).join('');
          const r = lastLines(text, n);
          assert.ok(text.endsWith(r.text));
          assert.equal(countNewlines(Buffer.from(r.text)), Math.min(n, lines.length));
          assert.equal(r.dropped, r.text.length < text.length);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('cutAt', () => {
  test('property: at most max bytes, a prefix, and valid UTF-8 (no character cut)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 60 }),
        fc.integer({ min: 0, max: 200 }),
        (s, max) => {
          const bytes = new TextEncoder().encode(s);
          const cut = cutAt(bytes, max);
          assert.ok(cut.length <= max || cut.length === bytes.length);
          assert.deepEqual(cut, bytes.subarray(0, cut.length));
          const decoded = new TextDecoder('utf-8', { fatal: true }).decode(cut);
          assert.ok(s.startsWith(decoded));
          assert.ok(
            cut.length > max - 4 || cut.length === bytes.length,
            'moved back by less than one character',
          );
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('notStarted', () => {
  test('a pod never scheduled, a container waiting, one that ran', () => {
    assert.match(notStarted(undefined, undefined) ?? '', /never scheduled/);
    assert.match(notStarted('n', undefined) ?? '', /never started/);
    assert.equal(
      notStarted('n', { name: 'c', state: { waiting: { reason: 'ImagePullBackOff' } } }),
      'the container never started (waiting: ImagePullBackOff)',
    );
    assert.equal(notStarted('n', { name: 'c', state: { terminated: {} } }), undefined);
    assert.equal(notStarted('n', { name: 'c', state: { running: {} } }), undefined);
    // Restarted and now waiting again: its previous run left a log.
    assert.equal(
      notStarted('n', { name: 'c', state: { waiting: {} }, lastState: { terminated: {} } }),
      undefined,
    );
  });
});

describe('toArchivedEvent', () => {
  test('a core/v1 Event and one written through events.k8s.io/v1', () => {
    assert.deepEqual(
      toArchivedEvent({
        involvedObject: { kind: 'Job', name: 'j' },
        type: 'Normal',
        reason: 'Completed',
        message: 'Job completed',
        count: 2,
        firstTimestamp: '2026-01-01T00:00:00Z',
        lastTimestamp: '2026-01-01T00:00:05Z',
        source: { component: 'job-controller' },
      }),
      {
        involvedKind: 'Job',
        involvedName: 'j',
        type: 'Normal',
        reason: 'Completed',
        message: 'Job completed',
        count: 2,
        firstTime: '2026-01-01T00:00:00Z',
        lastTime: '2026-01-01T00:00:05Z',
        source: 'job-controller',
      },
    );
    const scheduled = toArchivedEvent({
      involvedObject: { kind: 'Pod', name: 'p' },
      type: 'Normal',
      reason: 'Scheduled',
      firstTimestamp: null,
      lastTimestamp: null,
      eventTime: '2026-01-01T00:00:01.123456Z',
      source: {},
      reportingComponent: 'default-scheduler',
    });
    assert.equal(scheduled.source, 'default-scheduler');
    assert.equal(scheduled.firstTime, '2026-01-01T00:00:01.123456Z');
    assert.equal(scheduled.lastTime, '2026-01-01T00:00:01.123456Z');
    assert.equal(scheduled.count, 1);
  });
});
