// kwok Stage documents for the testbed. kwok ships no default stages; these are its own "fast"
// node/pod stages (copied from the module by hack/testbed/build) plus outcome control by label:
//   Job-owned pods succeed, unless labelled kttlfail=true (fail, exit 1) or kttlrun=true (keep running);
//   bare pods keep running unless labelled kttlsucceed=true or kttlfail=true.
// Selectors are disjoint on purpose: a stage `weight` picks at random, it does not give priority.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

export const TEST_LABELS = {
  fail: 'kttlfail',
  run: 'kttlrun',
  succeed: 'kttlsucceed',
} as const;

const terminatedStatus = (exitCode: number, reason: string, phase: string) => `
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: ${exitCode}
      finishedAt: {{ $now | Quote }}
      reason: ${reason}
      startedAt: {{ $now | Quote }}
{{ end }}
phase: ${phase}
`;

const notDeleting = { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' };
const running = { key: '.status.phase', operator: 'In', values: ['Running'] };
const label = (name: string) => `.metadata.labels.${name}`;

function stage(name: string, matchExpressions: object[], statusTemplate: string): object {
  return {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Stage',
    metadata: { name },
    spec: {
      resourceRef: { apiGroup: 'v1', kind: 'Pod' },
      selector: { matchExpressions },
      next: { statusTemplate },
    },
  };
}

export function stagesYaml(stagesDir: string): string {
  const upstream = (file: string) =>
    parseAllDocuments(readFileSync(join(stagesDir, file), 'utf8')).map((d) => d.toJS());
  const docs: object[] = [
    ...upstream('node-initialize.yaml'),
    ...upstream('pod-ready.yaml'),
    ...upstream('pod-delete.yaml'),
    stage(
      'pod-complete-job',
      [
        notDeleting,
        running,
        { key: '.metadata.ownerReferences.[].kind', operator: 'In', values: ['Job'] },
        { key: label(TEST_LABELS.fail), operator: 'NotIn', values: ['true'] },
        { key: label(TEST_LABELS.run), operator: 'NotIn', values: ['true'] },
        { key: label(TEST_LABELS.succeed), operator: 'NotIn', values: ['true'] },
      ],
      terminatedStatus(0, 'Completed', 'Succeeded'),
    ),
    stage(
      'pod-complete-labelled',
      [
        notDeleting,
        running,
        { key: label(TEST_LABELS.succeed), operator: 'In', values: ['true'] },
        { key: label(TEST_LABELS.fail), operator: 'NotIn', values: ['true'] },
      ],
      terminatedStatus(0, 'Completed', 'Succeeded'),
    ),
    stage(
      'pod-fail-labelled',
      [notDeleting, running, { key: label(TEST_LABELS.fail), operator: 'In', values: ['true'] }],
      terminatedStatus(1, 'Error', 'Failed'),
    ),
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}
