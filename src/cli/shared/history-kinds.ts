// The kinds of `kttl history` and `kttl logs`: a record outlives its object and maybe its CRD, so a
// built-in kind is matched offline (the registry), another through the resolver when the cluster
// still serves it, else by its spelling (src/cli/shared/history-model.ts guessedRecordKind).
import { objectPath } from '../../kube/resources.ts';
import { UserError } from '../errors.ts';
import type { Cluster } from './cluster.ts';
import { builtinRecordKind, guessedRecordKind, knownRecordKind, type RecordKind } from './history-model.ts';
import { kindResolver } from './kinds.ts';
import type { KindSpelling } from './refs.ts';

export async function recordKind(c: Cluster, s: KindSpelling): Promise<RecordKind> {
  const builtin = builtinRecordKind(s);
  if (builtin) return builtin;
  try {
    const k = await kindResolver(c).resolve(s);
    return knownRecordKind(s.text, k.resource.kind, k.resource.group);
  } catch (err) {
    if (err instanceof UserError) return guessedRecordKind(s);
    throw err;
  }
}

/** The object if it still exists and this user may see it; null otherwise (never throws). */
export async function liveObject(
  c: Cluster,
  s: KindSpelling,
  namespace: string,
  name: string,
): Promise<{ kind: string; group: string; uid: string } | null> {
  try {
    const k = await kindResolver(c).resolve(s);
    const raw = await c.http.request<{ metadata?: { uid?: string } }>(
      'get',
      'GET',
      objectPath(k.resource, namespace, name),
      { timeoutMs: 10_000 },
    );
    return { kind: k.resource.kind, group: k.resource.group, uid: raw?.metadata?.uid ?? '' };
  } catch {
    return null;
  }
}
