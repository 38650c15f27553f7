// Every CLI command on kinds other than Jobs and Pods, run as the BUILT bundle (dist/kttl.mjs)
// against the real control plane: a custom kind (Widget, its CRD installed here) named by a
// ClusterTTLPolicy with a `finished` rule through list, explain, set-ttl, delete (by name and
// --finished) and plan; a built-in custom kind (Argo Workflow, its CRD installed); and the errors
// (an unknown kind, a built-in kind not installed, a policy-named kind without a finish rule,
// malformed spellings without a cluster, RBAC naming the right resource).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cliKindNames } from '../../src/cli/shared/kinds.ts';
import { assertError, kttl, ok, parseTable, type Run, useCliTestbed } from '../testbed/cli.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
import { createJob } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  installCrd,
  installPolicyCrds,
  newNamespace,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

let tb: Testbed;
let c: Clients;

const ago = (ms: number) => new Date(Date.now() - ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const HOUR = 3_600_000;

/** widgets.example.com (kind Widget, short name wdg): a CRD as an operator would ship it. */
const WIDGET_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com',
    scope: 'Namespaced',
    names: {
      kind: 'Widget',
      plural: 'widgets',
      singular: 'widget',
      shortNames: ['wdg'],
      listKind: 'WidgetList',
    },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

/** gadgets.example.com: named by a policy WITHOUT a finish rule (never finished: not watched). */
const GADGET_CRD = {
  ...WIDGET_CRD,
  metadata: { name: 'gadgets.example.com' },
  spec: {
    ...WIDGET_CRD.spec,
    names: { kind: 'Gadget', plural: 'gadgets', singular: 'gadget', listKind: 'GadgetList' },
  },
};

async function apply(obj: unknown): Promise<void> {
  await tb.kubectl(['apply', '-f', '-'], JSON.stringify(obj));
}

/** Creates a custom resource, then sets its status through the status subresource (as operators do). */
async function createWithStatus(
  apiVersion: string,
  kind: string,
  resource: string,
  namespace: string,
  name: string,
  status: Record<string, unknown>,
  annotations: Record<string, string> = {},
): Promise<void> {
  await apply({ apiVersion, kind, metadata: { name, namespace, annotations }, spec: {} });
  await tb.kubectl([
    'patch',
    resource,
    name,
    '-n',
    namespace,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

async function exists(resource: string, namespace: string, name: string): Promise<boolean> {
  const out = await tb.kubectl(['get', resource, '-n', namespace, '--ignore-not-found', '-o', 'name']);
  return out.split('\n').some((l) => l.trim().endsWith(`/${name}`));
}

interface Item {
  name: string;
  namespace: string;
  kind: string;
  apiVersion: string;
  status: string;
  state: string;
  ttl: string;
  source: string;
}

async function items(args: string[]): Promise<Item[]> {
  const r = ok(await kttl([...args, '-o', 'json']));
  return (JSON.parse(r.stdout) as { items: Item[] }).items;
}

const byName = (xs: Item[]) => Object.fromEntries(xs.map((x) => [x.name, x]));

before(async () => {
  ({ tb, c } = await useCliTestbed());
  await installPolicyCrds(tb);
  for (const crd of [WIDGET_CRD, GADGET_CRD]) await apply(crd);
  await tb.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/widgets.example.com',
    'crd/gadgets.example.com',
  ]);
  await installCrd(tb, 'argoproj.io', 'Workflow', 'workflows', 'v1alpha1');
});

describe('a custom kind named by a ClusterTTLPolicy, through every command', () => {
  let ns: string;
  const policy = (namespace: string) => ({
    apiVersion: 'kttl.dev/v1alpha1',
    kind: 'ClusterTTLPolicy',
    metadata: { name: `cli-kinds-${namespace}`.slice(0, 63) },
    spec: {
      resources: [
        {
          apiVersion: 'example.com/v1',
          kind: 'Widget',
          finished: {
            succeeded: { field: '.status.phase', values: ['Done'] },
            failed: { field: '.status.phase', values: ['Broken'] },
            timeField: '.status.finishedAt',
          },
        },
        { apiVersion: 'example.com/v1', kind: 'Gadget' },
      ],
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
      ttl: '1h',
    },
  });

  before(async () => {
    ns = await newNamespace(c, 'cli-kinds');
    await apply(policy(ns));
    const w = (name: string, status: Record<string, unknown>, annotations?: Record<string, string>) =>
      createWithStatus('example.com/v1', 'Widget', 'widgets.example.com', ns, name, status, annotations);
    await w('w-old', { phase: 'Done', finishedAt: ago(2 * HOUR) }); // policy 1h: due
    await w('w-recent', { phase: 'Broken', finishedAt: ago(60_000) }); // due in ~59 min
    await w('w-running', { phase: 'Spinning' });
  });

  after(async () => {
    await tb.kubectl(['delete', 'clusterttlpolicy', policy(ns).metadata.name, '--ignore-not-found']);
  });

  test('list: every spelling kubectl accepts, judged by the policy finish rule', async () => {
    const want = ['w-old', 'w-recent', 'w-running'];
    for (const spelling of [
      'widgets',
      'widget',
      'Widget',
      'WIDGETS',
      'wdg',
      'widgets.example.com',
      'Widget.v1.example.com',
    ]) {
      const got = await items(['list', spelling, '-n', ns]);
      assert.deepEqual(got.map((i) => i.name).sort(), want, spelling);
    }
    const rows = byName(await items(['list', 'widgets', '-n', ns]));
    assert.equal(rows['w-old']!.kind, 'Widget');
    assert.equal(rows['w-old']!.apiVersion, 'example.com/v1');
    // The policy's finish rule judges them, as the controller does (docs/policies.md).
    assert.equal(rows['w-old']!.status, 'Succeeded');
    assert.equal(rows['w-old']!.state, 'expired');
    assert.equal(rows['w-old']!.source, 'policy');
    assert.equal(rows['w-recent']!.status, 'Failed');
    assert.equal(rows['w-recent']!.state, 'pending');
    assert.equal(rows['w-running']!.status, 'Running');

    const table = parseTable(ok(await kttl(['list', 'wdg', '-n', ns])).stdout);
    assert.equal(table.rows.get('w-old')?.KIND, 'Widget');
    // Several kinds at once, jobs among them.
    const mixed = await items(['list', 'jobs,widgets', '-n', ns]);
    assert.equal(mixed.length, 3);
  });

  test('explain: the widget and its verdict', async () => {
    const doc = JSON.parse(ok(await kttl(['explain', 'widget/w-old', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(doc.object.kind, 'Widget');
    assert.equal(doc.object.name, 'w-old');
    assert.equal(doc.status, 'Succeeded');
    assert.equal(doc.deletion.state, 'expired');
    const text = ok(await kttl(['explain', 'widgets.example.com/w-running', '-n', ns])).stdout;
    assert.match(text, new RegExp(`^Widget ${ns}/w-running `), text);
    assertError(
      await kttl(['explain', 'widget/nope', '-n', ns]),
      1,
      `error: widgets.example.com "nope" not found in namespace "${ns}"`,
    );
  });

  test('plan: the due widget is in the window, the running one is not', async () => {
    const doc = JSON.parse(ok(await kttl(['plan', 'widgets', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(doc.total, 2, 'w-old (due) and w-recent (in ~59 min) within the default 1h');
    const names = doc.groups.flatMap((g: { objects: Array<{ name: string; kind: string }> }) =>
      g.objects.map((o) => `${o.kind}/${o.name}`),
    );
    assert.deepEqual(names.sort(), ['Widget/w-old', 'Widget/w-recent']);
    assert.equal(doc.notPlanned.running, 1);
  });

  test('set-ttl: the annotation on a widget (no native field on custom kinds)', async () => {
    const r = ok(await kttl(['set-ttl', 'wdg/w-running', '2h', '-n', ns]));
    assert.equal(
      r.stdout,
      'widget.example.com/w-running: annotation kttl.dev/ttl=2h; applies once it finishes\n',
    );
    const ann = await tb.kubectl([
      'get',
      'widgets.example.com',
      'w-running',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.annotations.kttl\\.dev/ttl}',
    ]);
    assert.equal(ann, '2h');
  });

  test('delete: by name (unfinished refused without --force), then --finished', async () => {
    assertError(
      await kttl(['delete', 'widget/w-running', '--yes', '-n', ns]),
      1,
      'error: widget/w-running has not finished (Running): pass --force to delete it anyway',
    );
    const named = ok(await kttl(['delete', 'widget/w-recent', '--yes', '-n', ns]));
    assert.equal(named.stdout, 'widget.example.com "w-recent" deleted\n');
    await waitFor(
      'w-recent gone',
      async () => !(await exists('widgets.example.com', ns, 'w-recent')),
      30_000,
    );

    const dry = ok(await kttl(['delete', 'widgets', '--finished', '--dry-run', '-n', ns]));
    assert.match(dry.stdout, /w-old/);
    assert.doesNotMatch(dry.stdout, /w-running/);
    const finished = ok(await kttl(['delete', 'widgets.example.com', '--finished', '--yes', '-n', ns]));
    assert.equal(finished.stdout, 'widget.example.com "w-old" deleted\n');
    await waitFor('w-old gone', async () => !(await exists('widgets.example.com', ns, 'w-old')), 30_000);
    assert.ok(await exists('widgets.example.com', ns, 'w-running'), 'the running widget stays');
  });

  test('RBAC errors name the resource: the chart identity may not list widgets.example.com', async () => {
    assertError(
      await kttl(['list', 'widgets', '-n', ns], { kubeconfig: controllerKubeconfigPath(tb) }),
      2,
      `error: forbidden: cannot list widgets.example.com in namespace "${ns}"`,
    );
  });

  test('a kind a policy names without a finish rule is one clear line (exit 1)', async () => {
    assertError(
      await kttl(['list', 'gadgets', '-n', ns]),
      1,
      new RegExp(
        `^error: gadgets\\.example\\.com is named by ClusterTTLPolicy/${policy(ns).metadata.name} without a \`finished\` rule, and kttl has no built-in rule for it`,
      ),
    );
  });

  test('an unknown kind: one line listing the built-in kinds and the policy-named ones', async () => {
    const r = await kttl(['list', 'cronjobs', '-n', ns]);
    const prefix = `error: unknown kind "cronjobs" (known: ${cliKindNames().join(', ')}; named by policies: `;
    assertError(
      r,
      1,
      new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*widgets\\.example\\.com`),
    );
    assert.doesNotMatch(r.stderr, /gadgets/, 'a kind without a finish rule is not offered');
    assertError(
      await kttl(['explain', 'deployment/x', '-n', ns]),
      1,
      /^error: unknown kind "deployment" \(known: jobs, pods, /,
    );
    assertError(
      await kttl(['delete', 'configmaps', '--finished', '-n', ns]),
      1,
      /^error: unknown kind "configmaps" /,
    );
    assertError(await kttl(['set-ttl', 'secret/x', '1h', '-n', ns]), 1, /^error: unknown kind "secret" /);
    assertError(await kttl(['plan', 'jobs,things', '-n', ns]), 1, /^error: unknown kind "things" /);
  });
});

describe('a built-in custom kind: Argo Workflows', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-wf');
    const wf = (name: string, status: Record<string, unknown>, annotations?: Record<string, string>) =>
      createWithStatus(
        'argoproj.io/v1alpha1',
        'Workflow',
        'workflows.argoproj.io',
        ns,
        name,
        status,
        annotations,
      );
    await wf('wf-old', { phase: 'Succeeded', finishedAt: ago(2 * HOUR) }, { 'kttl.dev/ttl': '1h' });
    await wf('wf-failed', { phase: 'Error', finishedAt: ago(60_000) }, { 'kttl.dev/ttl': '1d' });
    await wf('wf-running', { phase: 'Running' });
  });

  test('list workflows -A, wf, workflows.argoproj.io: judged by the built-in rule', async () => {
    const all = (await items(['list', 'workflows', '-A'])).filter((i) => i.namespace === ns);
    const rows = byName(all);
    assert.deepEqual(Object.keys(rows).sort(), ['wf-failed', 'wf-old', 'wf-running']);
    assert.equal(rows['wf-old']!.status, 'Succeeded');
    assert.equal(rows['wf-old']!.state, 'expired');
    assert.equal(rows['wf-failed']!.status, 'Failed');
    assert.equal(rows['wf-running']!.status, 'Running');
    for (const spelling of [
      'wf',
      'Workflow',
      'workflows.argoproj.io',
      'workflow.v1alpha1.argoproj.io',
      'argoproj.io/workflow',
    ])
      assert.equal((await items(['list', spelling, '-n', ns])).length, 3, spelling);
    const table = parseTable(ok(await kttl(['list', 'workflows', '-A'])).stdout);
    assert.equal(table.rows.get('wf-old')?.NAMESPACE, ns);
  });

  test('explain workflow/x', async () => {
    const doc = JSON.parse(ok(await kttl(['explain', 'workflow/wf-failed', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(doc.object.kind, 'Workflow');
    assert.equal(doc.status, 'Failed');
    assert.equal(doc.deletion.state, 'pending');
    const text = ok(await kttl(['explain', 'wf/wf-old', '-n', ns])).stdout;
    assert.match(text, new RegExp(`^Workflow ${ns}/wf-old  \\(workflow/wf-old, uid `));
  });

  test('set-ttl and plan on workflows', async () => {
    ok(await kttl(['set-ttl', 'workflow/wf-failed', '30s', '--yes', '-n', ns]));
    const ann = await tb.kubectl([
      'get',
      'workflows.argoproj.io',
      'wf-failed',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.annotations.kttl\\.dev/ttl}',
    ]);
    assert.equal(ann, '30s');
    const doc = JSON.parse(ok(await kttl(['plan', 'workflows', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(doc.total, 2, 'both finished workflows are due');
  });

  test('delete --finished workflows: the finished ones go (Background), the running one stays', async () => {
    // A dependent that would hold its owner under Foreground: with the registry's Background the
    // workflow goes at once and the dependent is left to the garbage collector.
    const owner = JSON.parse(
      await tb.kubectl(['get', 'workflows.argoproj.io', 'wf-old', '-n', ns, '-o', 'json']),
    );
    await c.core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: 'wf-old-dep',
          finalizers: ['kttl.test/hold'],
          ownerReferences: [
            {
              apiVersion: 'argoproj.io/v1alpha1',
              kind: 'Workflow',
              name: 'wf-old',
              uid: owner.metadata.uid,
              blockOwnerDeletion: true,
            },
          ],
        },
      },
    });
    const r = ok(await kttl(['delete', '--finished', 'workflows', '--yes', '-n', ns]));
    assert.equal(
      r.stdout,
      'workflow.argoproj.io "wf-failed" deleted\nworkflow.argoproj.io "wf-old" deleted\n',
    );
    await waitFor(
      'finished workflows gone',
      async () =>
        !(await exists('workflows.argoproj.io', ns, 'wf-old')) &&
        !(await exists('workflows.argoproj.io', ns, 'wf-failed')),
      30_000,
    );
    assert.ok(await exists('workflows.argoproj.io', ns, 'wf-running'));
    await c.core.patchNamespacedConfigMap({
      name: 'wf-old-dep',
      namespace: ns,
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
    });
    assertError(
      await kttl(['delete', 'workflow/wf-running', '--yes', '-n', ns]),
      1,
      'error: workflow/wf-running has not finished (Running): pass --force to delete it anyway',
    );
  });
});

describe('two kinds named Job: batch and Volcano', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-vc');
    await installCrd(tb, 'batch.volcano.sh', 'Job', 'jobs', 'v1alpha1');
    await createJob(c, { name: 'same', namespace: ns });
    await waitForJob(c, ns, 'same', 'Complete');
    await createWithStatus('batch.volcano.sh/v1alpha1', 'Job', 'jobs.batch.volcano.sh', ns, 'same', {
      state: { phase: 'Completed', lastTransitionTime: ago(60_000) },
    });
  });

  test('jobs is batch; vcjob and jobs.batch.volcano.sh are Volcano; both named in one delete', async () => {
    const batch = await items(['list', 'jobs', '-n', ns]);
    assert.deepEqual(
      batch.map((i) => i.apiVersion),
      ['batch/v1'],
    );
    for (const spelling of ['vcjob', 'vj', 'jobs.batch.volcano.sh', 'Job.v1alpha1.batch.volcano.sh']) {
      const vc = await items(['list', spelling, '-n', ns]);
      assert.deepEqual(
        vc.map((i) => `${i.apiVersion} ${i.status}`),
        ['batch.volcano.sh/v1alpha1 Succeeded'],
        spelling,
      );
    }
    const doc = JSON.parse(ok(await kttl(['explain', 'vcjob/same', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(doc.object.apiVersion, 'batch.volcano.sh/v1alpha1');
    // Volcano's spec.ttlSecondsAfterFinished is not kttl's native field: the annotation is written.
    const set = ok(await kttl(['set-ttl', 'vcjob/same', '2h', '-n', ns]));
    assert.match(
      set.stdout,
      /^job\.batch\.volcano\.sh\/same: annotation kttl\.dev\/ttl=2h; expires in 11\dm\n$/,
    );
    const ann = await tb.kubectl([
      'get',
      'jobs.batch.volcano.sh',
      'same',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.annotations.kttl\\.dev/ttl}|{.spec.ttlSecondsAfterFinished}',
    ]);
    assert.equal(ann, '2h|');
    // Same name, two kinds: both are shown (kinds are told apart by group, never by kind alone).
    const dry = ok(await kttl(['delete', 'job/same', 'vcjob/same', '--dry-run', '-n', ns])).stdout;
    assert.equal(dry.match(/^same\s/gm)?.length, 2, dry);
    const r = ok(await kttl(['delete', 'jobs.batch.volcano.sh/same', 'job/same', '--yes', '-n', ns]));
    assert.equal(r.stdout, 'job.batch.volcano.sh "same" deleted\njob.batch "same" deleted\n');
  });
});

describe('kind errors', () => {
  test('a built-in kind whose CRD is not installed: one line, exit 1 (as kubectl)', async () => {
    // XGBoostJob: removed here if an earlier file installed it; files run one at a time.
    await tb.kubectl(['delete', 'crd', 'xgboostjobs.kubeflow.org', '--ignore-not-found', '--wait=true']);
    await waitFor(
      'xgboostjobs no longer served',
      async () => {
        const r = await kttl(['list', 'xgboostjobs', '-n', 'default']);
        return r.code === 1;
      },
      30_000,
    );
    assertError(
      await kttl(['list', 'xgboostjobs', '-n', 'default']),
      1,
      'error: the server doesn\'t have a resource type "xgboostjobs" (xgboostjobs.kubeflow.org, from Kubeflow training-operator, is not installed)',
    );
    assertError(
      await kttl(['explain', 'xgboostjob/x', '-n', 'default']),
      1,
      /^error: the server doesn't have a resource type "xgboostjob" /,
    );
  });

  test('malformed kinds are refused before any request (no cluster needed)', async () => {
    const offline = { kubeconfig: '/nonexistent/kubeconfig' };
    const cases: Array<[string[], string | RegExp]> = [
      [
        ['list', 'jobs..batch'],
        /^error: invalid kind "jobs\.\.batch": empty part \(expected KIND, KIND\.GROUP/,
      ],
      [['list', 'job$'], /^error: invalid kind "job\$": "\$" is not allowed/],
      [['explain', 'a/b/c/d/x'], /^error: invalid kind "a\/b\/c\/d": too many "\/"/],
      [
        ['delete', 'wf/Bad_Name', '--yes'],
        'error: invalid name "Bad_Name" in "wf/Bad_Name" (lower-case letters, digits, "-" and ".")',
      ],
      [['set-ttl', 'nope', '1h'], 'error: expected KIND/NAME, got "nope" (e.g. job/nope or pod/nope)'],
      [['plan', ','], /^error: invalid kind ",": empty/],
    ];
    for (const [args, line] of cases) {
      const r: Run = await kttl(args, offline);
      assertError(r, 1, line);
    }
  });

  test('help and completion name the built-in kinds', async () => {
    const help = ok(await kttl(['list', '--help'])).stdout;
    for (const name of cliKindNames()) assert.ok(help.includes(name), `list --help names ${name}`);
    const script = ok(await kttl(['completion', 'bash'])).stdout;
    for (const word of ['workflows', 'wf', 'pipelineruns', 'workflow/'])
      assert.ok(script.includes(` ${word} `), word);
  });
});
