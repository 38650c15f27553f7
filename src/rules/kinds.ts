// The built-in kinds: ONE table. Everything that names a built-in kind derives from it — the
// controller's watch list (src/controller/kinds.ts), the finish rules (src/rules/finish.ts), the CLI's
// kind names (src/cli/shared/kinds.ts), the webhook's rules (src/webhook/config.ts), the RBAC and
// chart files and the docs table (scripts/gen-deploy.ts; test/unit/deploy/generated.test.ts checks
// they are in step). Adding a kind is one entry here plus its test: see docs/contributing.md.
import type { FinishRule } from './finish.ts';
import type { PropagationPolicy } from './types.ts';

export interface BuiltinKind {
  /** API group; '' is the core group. */
  group: string;
  /** The version the docs and examples use; the controller asks discovery for the served one. */
  version: string;
  kind: string;
  /** The resource name, as RBAC and URLs spell it (never guessed from the kind). */
  plural: string;
  /** kubectl's short names for the resource (the CRD's `names.shortNames`). */
  shortNames: readonly string[];
  /** Jobs and Pods finish by kttl's fixed rules; every other kind by its built-in finish rule. */
  finish: { fixed: 'job' | 'pod' } | { rule: Readonly<FinishRule> };
  /**
   * A label whose value is the object's name on the pods it runs (beyond pods it owns directly): the
   * archive reads their logs (src/archive/collector.ts).
   */
  podLabel?: string;
  /** The cascade of kttl's DELETE when no flag or policy sets one (upstream: Jobs Foreground). */
  defaultPropagation: PropagationPolicy;
  /**
   * The chart value that grants its RBAC rules and webhook rule: `always` (Jobs), `pods`
   * (`controller.pods`), `builtinKinds` (`controller.builtinKinds`; watched only when installed).
   */
  gate: 'always' | 'pods' | 'builtinKinds';
  /** Who makes it, for the docs table and help strings (builtinKindNames). */
  project: string;
  /** What counts as finished, for the docs table (docs/policies.md): the code is `finish`. */
  terminal: { succeeded: string; failed: string; interim: string; time: string };
}

function freezeRule(rule: FinishRule): Readonly<FinishRule> {
  for (const m of [rule.succeeded, rule.failed]) {
    if (m === undefined) continue;
    if ('condition' in m) Object.freeze(m.condition);
    else Object.freeze(m.values);
    Object.freeze(m);
  }
  return Object.freeze(rule);
}

const conditionRule = (succeeded: string, failed: [string, string]) =>
  freezeRule({
    succeeded: { condition: { type: succeeded, status: 'True' } },
    failed: { condition: { type: failed[0], status: failed[1] } },
  });

const KUBEFLOW_TERMINAL = {
  succeeded: 'condition `Succeeded=True`',
  failed: '`Failed=True`',
  interim: '`Created`, `Running`, `Restarting`, `Suspended`',
  time: "the condition's `lastTransitionTime`",
};

const kubeflowV1 = (kind: string, plural: string, version = 'v1'): BuiltinKind => ({
  group: 'kubeflow.org',
  version,
  kind,
  plural,
  shortNames: [],
  // Kubeflow training-operator v1 and mpi-operator v2beta1: conditions
  // Created/Running/Restarting/Succeeded/Failed(/Suspended) with status "True". Older MPIJob
  // v1alpha* versions reported status differently.
  finish: { rule: conditionRule('Succeeded', ['Failed', 'True']) },
  defaultPropagation: 'Background',
  gate: 'builtinKinds',
  project: 'Kubeflow training-operator',
  podLabel: 'training.kubeflow.org/job-name',
  terminal: KUBEFLOW_TERMINAL,
});

const tekton = (kind: string, plural: string, shortNames: string[]): BuiltinKind => ({
  group: 'tekton.dev',
  version: 'v1',
  kind,
  plural,
  shortNames,
  // Knative-style condition `Succeeded` True/False/Unknown. A cancelled or timed-out run is
  // Succeeded=False (reason Cancelled / PipelineRunTimeout / TaskRunTimeout): failed. Tekton also
  // sets status.completionTime; the condition's lastTransitionTime is used, as for Jobs.
  finish: { rule: conditionRule('Succeeded', ['Succeeded', 'False']) },
  defaultPropagation: 'Background',
  gate: 'builtinKinds',
  project: 'Tekton Pipelines',
  podLabel: `tekton.dev/${kind.charAt(0).toLowerCase()}${kind.slice(1)}`,
  terminal: {
    succeeded: 'condition `Succeeded=True`',
    failed: '`Succeeded=False` (also cancelled, timed out)',
    interim: '`Succeeded=Unknown`',
    time: "the condition's `lastTransitionTime`",
  },
});

/** In the order the docs list them. */
export const BUILTIN_KINDS: readonly Readonly<BuiltinKind>[] = Object.freeze(
  [
    {
      group: 'batch',
      version: 'v1',
      kind: 'Job',
      plural: 'jobs',
      shortNames: [],
      finish: { fixed: 'job' },
      defaultPropagation: 'Foreground',
      gate: 'always',
      project: 'Kubernetes',
      terminal: {
        succeeded: 'condition `Complete=True`',
        failed: '`Failed=True`',
        interim: '`SuccessCriteriaMet`, `FailureTarget`',
        time: "the condition's `lastTransitionTime`",
      },
    },
    {
      group: '',
      version: 'v1',
      kind: 'Pod',
      plural: 'pods',
      shortNames: ['po'],
      finish: { fixed: 'pod' },
      defaultPropagation: 'Background',
      gate: 'pods',
      project: 'Kubernetes',
      terminal: {
        succeeded: '`phase: Succeeded`',
        failed: '`phase: Failed`',
        interim: '`Pending`, `Running`, `Unknown`',
        time: 'the latest container `finishedAt` (else when kttl first sees it finished)',
      },
    },
    {
      group: 'argoproj.io',
      version: 'v1alpha1',
      kind: 'Workflow',
      plural: 'workflows',
      shortNames: ['wf'],
      podLabel: 'workflows.argoproj.io/workflow',
      // status.phase is Pending|Running|Succeeded|Failed|Error; status.finishedAt is set when the
      // workflow completes. `Error` is Argo's "failed for a reason other than a step failing".
      finish: {
        rule: freezeRule({
          succeeded: { field: '.status.phase', values: ['Succeeded'] },
          failed: { field: '.status.phase', values: ['Failed', 'Error'] },
          timeField: '.status.finishedAt',
        }),
      },
      defaultPropagation: 'Background',
      gate: 'builtinKinds',
      project: 'Argo Workflows',
      terminal: {
        succeeded: '`phase: Succeeded`',
        failed: '`phase: Failed`, `Error`',
        interim: '`Pending`, `Running`',
        time: '`status.finishedAt`',
      },
    },
    tekton('PipelineRun', 'pipelineruns', ['pr', 'prs']),
    tekton('TaskRun', 'taskruns', ['tr', 'trs']),
    kubeflowV1('PyTorchJob', 'pytorchjobs'),
    kubeflowV1('TFJob', 'tfjobs'),
    kubeflowV1('MPIJob', 'mpijobs', 'v2beta1'),
    kubeflowV1('XGBoostJob', 'xgboostjobs'),
    {
      group: 'ray.io',
      version: 'v1',
      kind: 'RayJob',
      plural: 'rayjobs',
      shortNames: [],
      // status.jobStatus is the Ray job's own status (PENDING|RUNNING|STOPPED|SUCCEEDED|FAILED),
      // status.endTime its end. Not covered: status.jobDeploymentStatus can be `Failed` while
      // jobStatus is not FAILED, and a STOPPED job is terminal but neither outcome here; such
      // RayJobs are not finished by this rule (a policy can name its own rule).
      finish: {
        rule: freezeRule({
          succeeded: { field: '.status.jobStatus', values: ['SUCCEEDED'] },
          failed: { field: '.status.jobStatus', values: ['FAILED'] },
          timeField: '.status.endTime',
        }),
      },
      defaultPropagation: 'Background',
      gate: 'builtinKinds',
      project: 'KubeRay',
      terminal: {
        succeeded: '`jobStatus: SUCCEEDED`',
        failed: '`jobStatus: FAILED`',
        interim: '`PENDING`, `RUNNING`; `STOPPED` is not covered',
        time: '`status.endTime`',
      },
    },
    {
      group: 'sparkoperator.k8s.io',
      version: 'v1beta2',
      kind: 'SparkApplication',
      plural: 'sparkapplications',
      shortNames: ['sparkapp'],
      podLabel: 'sparkoperator.k8s.io/app-name',
      // status.applicationState.state: terminal states are COMPLETED and FAILED only (the operator's
      // own TTL handling checks exactly these); SUBMISSION_FAILED, FAILING and PENDING_RERUN are
      // interim: the operator retries or reruns per restartPolicy and ends in FAILED when it gives up.
      finish: {
        rule: freezeRule({
          succeeded: { field: '.status.applicationState.state', values: ['COMPLETED'] },
          failed: { field: '.status.applicationState.state', values: ['FAILED'] },
          timeField: '.status.terminationTime',
        }),
      },
      defaultPropagation: 'Background',
      gate: 'builtinKinds',
      project: 'Spark operator',
      terminal: {
        succeeded: '`applicationState.state: COMPLETED`',
        failed: '`FAILED`',
        interim:
          '`SUBMITTED`, `RUNNING`, `SUBMISSION_FAILED`, `PENDING_RERUN`, `FAILING`, `SUCCEEDING`, `INVALIDATING`',
        time: '`status.terminationTime`',
      },
    },
    {
      group: 'jobset.x-k8s.io',
      version: 'v1alpha2',
      kind: 'JobSet',
      plural: 'jobsets',
      shortNames: [],
      podLabel: 'jobset.sigs.k8s.io/jobset-name',
      // kubernetes-sigs/jobset api/jobset/v1alpha2/jobset_types.go: metav1 conditions. Finished as
      // its own jobSetFinished and TTL judge it (pkg/controllers/jobset_controller.go,
      // ttl_after_finished.go): `Completed` or `Failed` with status True, from that condition's
      // lastTransitionTime; status.terminalState repeats the outcome. Interim: `Suspended`,
      // `StartupPolicyInProgress`, `StartupPolicyCompleted`, `RestartingJobSet` (a restart under the
      // failure policy is not a failure until maxRestarts is used up: then Failed=True). There is no
      // `FailureTarget`. The CRD has no short names. JobSet's own spec.ttlSecondsAfterFinished
      // deletes in the Foreground; kttl deletes Background like the other custom kinds (the child
      // Jobs and their Pods follow through the garbage collector).
      finish: { rule: conditionRule('Completed', ['Failed', 'True']) },
      defaultPropagation: 'Background',
      gate: 'builtinKinds',
      project: 'JobSet',
      terminal: {
        succeeded: 'condition `Completed=True`',
        failed: '`Failed=True`',
        interim: '`Suspended`, `StartupPolicyInProgress`, `StartupPolicyCompleted`, `RestartingJobSet`',
        time: "the condition's `lastTransitionTime`",
      },
    },
    {
      // Kind `Job` like batch's: everything is keyed by group and kind (kindKeyOf), never by kind.
      group: 'batch.volcano.sh',
      version: 'v1alpha1',
      kind: 'Job',
      plural: 'jobs',
      shortNames: ['vcjob', 'vj'],
      podLabel: 'volcano.sh/job-name',
      // volcano.sh/apis pkg/apis/batch/v1alpha1/job.go: status.state.phase. Finished as Volcano's
      // own garbage collector judges it (volcano pkg/controllers/garbagecollector: Completed, Failed
      // or Terminated, from status.state.lastTransitionTime). Terminated ("finished unexpectedly",
      // e.g. ended by an event policy) counts as failed. Aborted is interim: `vcctl job resume` takes
      // an aborted Job back to Restarting (pkg/controllers/job/state/aborted.go); Aborting,
      // Completing, Terminating and Restarting are still releasing or recreating pods.
      // status.conditions is Volcano's phase history ({status: <phase>}), not typed conditions.
      // spec.ttlSecondsAfterFinished is Volcano's own (its garbage collector applies it); kttl's
      // native-field source is batch Jobs' only.
      finish: {
        rule: freezeRule({
          succeeded: { field: '.status.state.phase', values: ['Completed'] },
          failed: { field: '.status.state.phase', values: ['Failed', 'Terminated'] },
          timeField: '.status.state.lastTransitionTime',
        }),
      },
      defaultPropagation: 'Background',
      gate: 'builtinKinds',
      project: 'Volcano',
      terminal: {
        succeeded: '`state.phase: Completed`',
        failed: '`Failed`, `Terminated`',
        interim:
          '`Pending`, `Running`, `Restarting`, `Completing`, `Terminating`, `Aborting`, `Aborted` (resumable)',
        time: '`status.state.lastTransitionTime`',
      },
    },
    {
      group: 'trainer.kubeflow.org',
      version: 'v1alpha1',
      kind: 'TrainJob',
      plural: 'trainjobs',
      shortNames: [],
      // Its JobSet is named after it: the pods carry the JobSet's name label.
      podLabel: 'jobset.sigs.k8s.io/jobset-name',
      // Kubeflow Trainer v2, kubeflow/trainer pkg/apis/trainer/v1alpha1/trainjob_types.go: metav1
      // conditions `Complete`, `Failed`, `Suspended`; finished as its IsTrainJobFinished
      // (pkg/util/trainjob) judges it: Complete or Failed with status True. Failed includes reasons
      // DeadlineExceeded and TrainingRuntimeNotSupported. `Suspended` is interim (resumable); a
      // `Created` condition existed before Trainer v2.0 and is interim too. No short names.
      finish: { rule: conditionRule('Complete', ['Failed', 'True']) },
      defaultPropagation: 'Background',
      gate: 'builtinKinds',
      project: 'Kubeflow Trainer',
      terminal: {
        succeeded: 'condition `Complete=True`',
        failed: '`Failed=True` (also deadline exceeded)',
        interim: '`Suspended` (and `Created` before v2.0)',
        time: "the condition's `lastTransitionTime`",
      },
    },
  ].map((k) => Object.freeze({ ...k, shortNames: Object.freeze(k.shortNames) }) as Readonly<BuiltinKind>),
);

/** `group/Kind`: how kinds are keyed everywhere (never by position). */
export function kindKeyOf(group: string, kind: string): string {
  return `${group}/${kind}`;
}

const BY_KEY: ReadonlyMap<string, Readonly<BuiltinKind>> = new Map(
  BUILTIN_KINDS.map((k) => [kindKeyOf(k.group, k.kind), k]),
);

/** The built-in kind with this group and kind, if any (own entries only, never `__proto__`). */
export function builtinKind(group: string, kind: string): Readonly<BuiltinKind> | undefined {
  return BY_KEY.get(kindKeyOf(group, kind));
}

/** The built-in kinds kttl watches when installed (chart value `controller.builtinKinds`). */
export function builtinCustomKinds(): readonly Readonly<BuiltinKind>[] {
  return BUILTIN_KINDS.filter((k) => k.gate === 'builtinKinds');
}

/**
 * The projects whose kinds are built in, for help strings and comments: "Argo Workflows, Tekton
 * Pipelines, …" (custom kinds only; Jobs and Pods are Kubernetes').
 */
export function builtinKindNames(): string {
  return [...new Set(builtinCustomKinds().map((k) => k.project))].join(', ');
}

/**
 * Kinds' resources grouped by API group, in registry order: the shape of RBAC and webhook rules
 * (`{apiGroups: [group], resources: [plural, …]}`).
 */
export function resourcesByGroup(
  kinds: readonly Readonly<BuiltinKind>[],
): Array<{ group: string; resources: string[] }> {
  const byGroup = new Map<string, string[]>();
  for (const k of kinds) {
    const list = byGroup.get(k.group) ?? [];
    if (!list.includes(k.plural)) list.push(k.plural);
    byGroup.set(k.group, list);
  }
  return [...byGroup].map(([group, resources]) => ({ group, resources }));
}
