// The CLI's view of TTLPolicy/ClusterTTLPolicy: the controller's own PolicyStore, read once per
// command (list, then stop watching), so `kttl list/explain/plan` judge exactly as the controller.
import pino from 'pino';
import { systemClock } from '../../clock.ts';
import type { KubeHttp } from '../../kube/http.ts';
import { PolicyStore } from '../../policy/store.ts';
import type { PolicyProvider, PolicySource } from './policies.ts';

const SYNC_TIMEOUT_MS = 10_000;

export const clusterPolicies: PolicySource = async (http: KubeHttp): Promise<PolicyProvider> => {
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
    explain: (obj) => {
      const e = store.explain(obj);
      const lines: string[] = [];
      if (e.winner) lines.push(`winner: ${e.winner.ref}`);
      for (const r of e.ranked) lines.push(`candidate ${r.policy.ref}: ${r.reason}`);
      for (const n of e.notMatching) lines.push(`not matching ${n.policy.ref}: ${n.reason}`);
      for (const i of e.ignored) lines.push(`ignored (invalid) ${i.ref}: ${i.errors.join('; ')}`);
      if (lines.length === 0) lines.push('no TTLPolicy or ClusterTTLPolicy names this kind');
      return lines;
    },
  };
};
