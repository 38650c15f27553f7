// The CLI's kind spellings, parsed offline (src/cli/shared/refs.ts) and matched against the registry
// and policy-named kinds (src/cli/shared/kinds.ts), as kubectl matches resource names.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  BUILTIN_CANDIDATES,
  chooseMatch,
  cliKindNames,
  completionKindWords,
  defaultPropagationText,
  type KindCandidate,
  kindsHelp,
  matchSpelling,
  namedKindsOf,
  qualifiedName,
  unknownKindMessage,
} from '../../../src/cli/shared/kinds.ts';
import { parseKindList, parseKindSpelling, parseRef } from '../../../src/cli/shared/refs.ts';
import { BUILTIN_KINDS } from '../../../src/rules/kinds.ts';

/** The kind a spelling means among the built-in kinds (null: none), offline. */
function builtinFor(text: string, extra: readonly KindCandidate[] = []): string | null {
  const s = parseKindSpelling(text);
  const m = chooseMatch(s, matchSpelling(s, [...BUILTIN_CANDIDATES, ...extra]));
  return m ? `${m.candidate.group}/${m.candidate.kind}${m.version ? `@${m.version}` : ''}` : null;
}

const widget: KindCandidate = {
  group: 'example.com',
  kind: 'Widget',
  plural: 'widgets',
  singular: 'widget',
  shortNames: ['wdg'],
  named: {
    group: 'example.com',
    kind: 'Widget',
    version: 'v1',
    finishRule: true,
    policies: ['ClusterTTLPolicy/w'],
  },
};

describe('kind spellings: every built-in kind', () => {
  for (const k of BUILTIN_KINDS) {
    const key = `${k.group}/${k.kind}`;
    test(`${k.kind}${k.group ? `.${k.group}` : ''}`, () => {
      // Unambiguous everywhere: with its group, in every form kubectl accepts.
      const v = `${key}@${k.version}`;
      const qualified: Array<[string, string]> = k.group
        ? [
            [`${k.plural}.${k.group}`, key],
            [`${k.kind}.${k.group}`, key],
            [`${k.kind.toLowerCase()}.${k.version}.${k.group}`, v],
            [`${k.group}/${k.kind}`, key],
            [`${k.group}/${k.version}/${k.plural}`, v],
          ]
        : [
            [k.plural, key],
            [`${k.kind.toLowerCase()}.${k.version}`, v],
            [`${k.version}/${k.kind}`, v],
          ];
      for (const [t, want] of qualified) {
        assert.equal(builtinFor(t), want, t);
        assert.equal(builtinFor(t.toUpperCase()), want, t.toUpperCase());
      }
      // Bare names: its own unless an earlier built-in kind answers to the same name.
      for (const t of [k.plural, k.kind, k.kind.toLowerCase(), ...k.shortNames]) {
        const first = BUILTIN_KINDS.find((b) =>
          [b.plural, b.kind.toLowerCase(), ...b.shortNames].includes(t.toLowerCase()),
        )!;
        assert.equal(builtinFor(t), `${first.group}/${first.kind}`, t);
      }
      // The name the help and the unknown-kind line give resolves to it.
      assert.equal(builtinFor(cliKindNames()[BUILTIN_KINDS.indexOf(k)]!), key);
    });
  }

  test('job/jobs/Job are batch Jobs; the Volcano Job needs its group or short name', () => {
    for (const t of ['job', 'jobs', 'Job', 'JOBS', 'job.batch', 'jobs.batch', 'jobs.v1.batch', 'batch/job'])
      assert.equal(builtinFor(t)?.replace(/@v1$/, ''), 'batch/Job', t);
    const volcano = BUILTIN_KINDS.find((k) => k.group === 'batch.volcano.sh');
    if (volcano) {
      for (const t of [
        'jobs.batch.volcano.sh',
        'job.batch.volcano.sh',
        'Job.batch.volcano.sh',
        ...volcano.shortNames,
      ])
        assert.equal(builtinFor(t), 'batch.volcano.sh/Job', t);
      assert.equal(
        builtinFor(`jobs.${volcano.version}.batch.volcano.sh`),
        `batch.volcano.sh/Job@${volcano.version}`,
      );
    }
    // The same holds for any later kind named Job: batch's comes first in the registry.
    const other: KindCandidate = {
      group: 'x.io',
      kind: 'Job',
      plural: 'jobs',
      singular: 'job',
      shortNames: ['xj'],
    };
    assert.equal(builtinFor('jobs', [other]), 'batch/Job');
    assert.equal(builtinFor('jobs.x.io', [other]), 'x.io/Job');
    assert.equal(builtinFor('xj', [other]), 'x.io/Job');
  });

  test('pods: po, pods.v1, v1/pod; core kinds have no group', () => {
    for (const t of ['po', 'pod', 'Pods', 'pods.v1', 'v1/pod']) assert.match(builtinFor(t)!, /^\/Pod/, t);
    assert.equal(builtinFor('pods.batch'), null);
  });

  test('case does not matter (property)', () => {
    const names = BUILTIN_KINDS.flatMap((k) => [
      k.plural,
      k.kind,
      ...k.shortNames,
      k.group ? `${k.plural}.${k.group}` : k.plural,
    ]);
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
        (n, up) => {
          const mixed = [...n].map((ch, i) => (up[i] ? ch.toUpperCase() : ch.toLowerCase())).join('');
          assert.equal(builtinFor(mixed), builtinFor(n.toLowerCase()));
        },
      ),
      { numRuns: 500 },
    );
  });

  test('kinds nobody knows match nothing', () => {
    for (const t of ['cronjobs', 'deployment', 'workflows.example.com', 'jobs.v1.apps', 'widgets'])
      assert.equal(builtinFor(t), null, t);
  });
});

describe('kind spellings: malformed ones are one clear user error, offline', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /^invalid kind "": empty \(expected KIND, KIND\.GROUP or KIND\.VERSION\.GROUP/],
    ['  ', /^invalid kind " {2}": empty/],
    ['jobs..batch', /^invalid kind "jobs\.\.batch": empty part/],
    ['.batch', /^invalid kind "\.batch": empty part/],
    ['jobs.', /^invalid kind "jobs\.": empty part/],
    ['batch./job', /^invalid kind "batch\.\/job": empty part/],
    ['job$', /^invalid kind "job\$": "\$" is not allowed/],
    ['jobs_x', /^invalid kind "jobs_x": "_" is not allowed/],
    ['a/b/c/d', /^invalid kind "a\/b\/c\/d": too many "\/"/],
    ['batch/', /^invalid kind "batch\/": empty part/],
    ['batch/x.y', /^invalid kind "batch\/x\.y": "\." in the kind "x\.y"/],
    ['batch/vx/job', /^invalid kind "batch\/vx\/job": "vx" is not a version/],
    ['-jobs', /^invalid kind "-jobs": "-jobs" is not a resource name/],
  ];
  for (const [text, want] of cases) {
    test(JSON.stringify(text), () => {
      assert.throws(
        () => parseKindSpelling(text),
        (e: Error) => e.name === 'UserError' && want.test(e.message),
      );
    });
  }

  test('lists: empty items dropped, an empty list refused', () => {
    assert.deepEqual(
      parseKindList('jobs,,pods,').map((s) => s.text),
      ['jobs', 'pods'],
    );
    assert.throws(() => parseKindList(','), /^UserError: invalid kind ",": empty/);
  });

  test('refs: KIND/NAME with the kind in any form; a bare word or a bad name refused', () => {
    const r = parseRef('workflows.argoproj.io/nightly-1');
    assert.equal(r.name, 'nightly-1');
    assert.deepEqual(r.kind.readings, [{ name: 'workflows', group: 'argoproj.io' }]);
    assert.deepEqual(parseRef('batch/v1/job/a').kind.readings, [
      { name: 'job', group: 'batch', version: 'v1' },
    ]);
    assert.deepEqual(parseRef('Job/a').kind.readings, [{ name: 'job' }]);
    assert.throws(() => parseRef('nope'), {
      message: 'expected KIND/NAME, got "nope" (e.g. job/nope or pod/nope)',
    });
    assert.throws(() => parseRef('job/Bad_Name'), {
      message: 'invalid name "Bad_Name" in "job/Bad_Name" (lower-case letters, digits, "-" and ".")',
    });
    assert.throws(() => parseRef('jo$b/a'), /invalid kind "jo\$b"/);
    assert.throws(() => parseRef('/a'), /invalid kind "": empty/);
  });

  test('any printable input either parses or is a UserError (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (t) => {
        try {
          const s = parseKindSpelling(t);
          assert.ok(s.readings.length >= 1);
        } catch (e) {
          assert.equal((e as Error).name, 'UserError');
          assert.ok(!(e as Error).message.includes('\n'), 'one line');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('policy-named kinds', () => {
  const policy = (kind: string, name: string, resources: unknown[], namespace?: string) => ({
    apiVersion: 'kttl.dev/v1alpha1',
    kind,
    metadata: { name, uid: `uid-${name}`, ...(namespace ? { namespace } : {}) },
    spec: { resources, ttl: '1h' },
  });

  test('namedKindsOf: the kinds in spec.resources[], with whether a policy gives a finish rule', () => {
    const named = namedKindsOf([
      {
        kind: 'ClusterTTLPolicy',
        raw: policy('ClusterTTLPolicy', 'w', [
          {
            apiVersion: 'example.com/v1',
            kind: 'Widget',
            finished: { succeeded: { field: '.status.phase', values: ['Done'] } },
          },
          { apiVersion: 'batch/v1', kind: 'Job' },
        ]),
      },
      {
        kind: 'TTLPolicy',
        raw: policy('TTLPolicy', 'g', [{ apiVersion: 'example.com/v2', kind: 'Gadget' }], 'team-a'),
      },
      { kind: 'TTLPolicy', raw: policy('TTLPolicy', 'broken', [{ kind: 'Nope' }], 'team-a') },
    ]);
    assert.deepEqual(
      named.map((n) => [n.group, n.kind, n.version, n.finishRule, n.policies.join(',')]),
      [
        ['example.com', 'Widget', 'v1', true, 'ClusterTTLPolicy/w'],
        ['batch', 'Job', 'v1', false, 'ClusterTTLPolicy/w'],
        ['example.com', 'Gadget', 'v2', false, 'TTLPolicy/team-a/g'],
      ],
    );
  });

  test('a policy-named kind answers to its kind, plural, singular, short name, with its group', () => {
    for (const t of ['widget', 'Widget', 'widgets', 'wdg', 'widgets.example.com', 'Widget.v1.example.com']) {
      const s = parseKindSpelling(t);
      assert.equal(chooseMatch(s, matchSpelling(s, [widget]))?.candidate, widget, t);
    }
  });

  test('two policy-named kinds of one name are ambiguous: the error names both', () => {
    const other = { ...widget, group: 'other.org' };
    const s = parseKindSpelling('widgets');
    assert.throws(() => chooseMatch(s, matchSpelling(s, [widget, other])), {
      message:
        'kind "widgets" is ambiguous: it names widgets.example.com, widgets.other.org (write one of them)',
    });
    const q = parseKindSpelling('widgets.other.org');
    assert.equal(chooseMatch(q, matchSpelling(q, [widget, other]))?.candidate, other);
  });

  test('the unknown-kind line lists the built-in kinds and the policy-named ones with a finish rule', () => {
    const noRule = {
      ...widget,
      kind: 'Gadget',
      plural: 'gadgets',
      named: { ...widget.named!, finishRule: false },
    };
    const line = unknownKindMessage('cronjobs', [widget, noRule]);
    assert.equal(
      line,
      `unknown kind "cronjobs" (known: ${cliKindNames().join(', ')}; named by policies: widgets.example.com)`,
    );
    assert.ok(!line.includes('\n'));
    assert.equal(unknownKindMessage('x', []), `unknown kind "x" (known: ${cliKindNames().join(', ')})`);
    assert.equal(qualifiedName({ ...widget, plural: undefined }), 'widget.example.com');
    // Policies the user may not read: said, since a kind they name would be unknown here.
    assert.equal(
      unknownKindMessage('widgets', [], 'not allowed to list clusterttlpolicies.kttl.dev'),
      `unknown kind "widgets" (known: ${cliKindNames().join(', ')}; not allowed to list clusterttlpolicies.kttl.dev, so the kinds they name are not known here)`,
    );
  });
});

describe('help and completion derive from the registry', () => {
  test('every built-in kind is named in the help and offered by completion', () => {
    const help = kindsHelp();
    const words = completionKindWords();
    for (const k of BUILTIN_KINDS) {
      const name = cliKindNames()[BUILTIN_KINDS.indexOf(k)]!;
      assert.ok(help.includes(name), `help names ${name}`);
      assert.ok(words.includes(name), `completion offers ${name}`);
      for (const s of k.shortNames) assert.ok(words.includes(s), `completion offers ${s}`);
    }
    assert.ok(words.includes('job/') && words.includes('pod/') && words.includes('workflow/'));
    assert.ok(
      help.split('\n').every((l) => l.length <= 100),
      'help lines fit 100 columns',
    );
    const cascade = defaultPropagationText();
    for (const k of BUILTIN_KINDS.filter((b) => b.defaultPropagation !== 'Background'))
      assert.match(
        cascade,
        new RegExp(`\\b${cliKindNames()[BUILTIN_KINDS.indexOf(k)]} [^,]*${k.defaultPropagation}`),
      );
    assert.match(cascade, /every other kind Background$/);
  });
});
