// The seam through which TTL policies (TTLPolicy / ClusterTTLPolicy, built in src/policy) reach
// the CLI later. Commands take a PolicySource; the default is "no policies". Nothing here imports
// src/policy: the wiring passes a source in when registering the commands.
import type { KubeHttp } from '../../kube/http.ts';
import type { FinishChoice, FinishRule } from '../../rules/finish.ts';
import type { ObjectSummary, PolicyTtl } from '../../rules/types.ts';

export interface PolicyProvider {
  /** The policy matched to the object (most specific wins), as the controller's policyFor. */
  policyFor(obj: ObjectSummary): PolicyTtl | null;
  /** The finish rules policies give a custom kind, as the controller evaluates it under each. */
  finishRulesOf?(apiVersion: string, kind: string): Array<{ key: string; rule: FinishRule }>;
  /** Which finish rule judges an object, as the controller's finishChoiceFor. */
  finishChoiceFor?(obj: ObjectSummary): FinishChoice;
  /** Annotation keys policies group by (`groupBy: annotation:<key>`): the summaries keep them. */
  groupAnnotationKeys?(): ReadonlySet<string>;
  /** For `explain`: one line per candidate policy and why the winner won (or why none matched). */
  explain?(obj: ObjectSummary): string[];
}

/** Loads the policies the commands judge by (e.g. lists TTLPolicies once per command). */
export type PolicySource = (http: KubeHttp) => Promise<PolicyProvider>;

export const NO_POLICIES: PolicyProvider = {
  policyFor: () => null,
  explain: () => ['no policy source is wired into this CLI build: policies are not considered'],
};

export const noPolicies: PolicySource = async () => NO_POLICIES;
