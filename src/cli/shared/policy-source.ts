// The CLI's view of TTLPolicy/ClusterTTLPolicy: the controller's own PolicyStore, read once per
// command (list, then stop watching), so `kttl list/explain/plan` judge exactly as the controller.
import pino from 'pino';
import { systemClock } from '../../clock.ts';
import { isApiError } from '../../kube/errors.ts';
import type { KubeHttp } from '../../kube/http.ts';
import { POLICY_API_VERSION } from '../../policy/schema.ts';
import { PolicyStore } from '../../policy/store.ts';
import type { PolicyProvider, PolicySource } from './policies.ts';

const SYNC_TIMEOUT_MS = 10_000;

export const clusterPolicies: PolicySource = async (http: KubeHttp): Promise<PolicyProvider> => {
  // One quick request first, so an unreachable cluster is not waited for (the command's own request
  // then fails with exit 2); no CRDs, or no right to read them, means judging without policies.
  try {
    // Both kinds must be listable (the store lists them cluster-wide); a 403 here would otherwise
    // leave the store retrying until the sync timeout on every command.
    for (const plural of ['ttlpolicies', 'clusterttlpolicies']) {
      await http.request('list', 'GET', `/apis/${POLICY_API_VERSION}/${plural}`, {
        query: { limit: 1 },
        timeoutMs: 10_000,
      });
    }
  } catch (err) {
    if (isApiError(err, 404)) return without('the TTLPolicy CRDs are not installed: no policies apply');
    if (isApiError(err, 403)) return without('not allowed to read TTLPolicies: judged without policies');
    // Unreachable or refused: the command's own request reports it, in its own words (exit 2).
    return without(`could not read TTLPolicies: ${err instanceof Error ? err.message : String(err)}`);
  }
  const store = new PolicyStore({ http, clock: systemClock, logger: pino({ level: 'silent' }) });
  store.start();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    store.synced,
    new Promise((r) => {
      timer = setTimeout(r, SYNC_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  await store.stop();
  return {
    policyFor: (obj) => store.policyFor(obj),
    finishRulesOf: (apiVersion, kind) => store.finishRulesOf(apiVersion, kind),
    finishChoiceFor: (obj) => store.finishChoiceFor(obj),
    groupAnnotationKeys: () => store.groupAnnotationKeys(),
    explain: (obj) => {
      const e = store.explain(obj);
      const lines: string[] = [];
      if (e.held) lines.push(`held: ${e.held} (no policy decides until then: kept)`);
      if (e.winner) lines.push(`winner: ${e.winner.ref}`);
      for (const r of e.ranked) lines.push(`candidate ${r.policy.ref}: ${r.reason}`);
      for (const n of e.notMatching) lines.push(`not matching ${n.policy.ref}: ${n.reason}`);
      for (const i of e.ignored) lines.push(`ignored (invalid) ${i.ref}: ${i.errors.join('; ')}`);
      if (lines.length === 0) lines.push('no TTLPolicy or ClusterTTLPolicy names this kind');
      return lines;
    },
  };
};

function without(why: string): PolicyProvider {
  return { policyFor: () => null, explain: () => [why] };
}
