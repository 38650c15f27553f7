// Lists the objects of some kinds and judges them: the input of list, plan and delete --finished.
import type { Cluster } from './cluster.ts';
import { listObjects } from './cluster.ts';
import type { PolicyProvider } from './policies.ts';
import { withRanks } from './ranks.ts';
import type { KindInfo } from './refs.ts';
import { evaluate, type JudgeContext, type Row, summarize } from './rows.ts';

export interface LoadOptions {
  kinds: readonly KindInfo[];
  /** undefined: all namespaces. */
  namespace: string | undefined;
  selector?: string;
  policies: PolicyProvider;
  helmHooks: boolean;
}

export interface Loaded {
  rows: Row[];
  /** The instant they were judged at (API server clock when it answered). */
  nowMs: number;
  ctx: JudgeContext;
}

export async function loadRows(c: Cluster, o: LoadOptions): Promise<Loaded> {
  const lists = [];
  for (const kind of o.kinds)
    lists.push({ kind, items: await listObjects(c, kind.resource, o.namespace, o.selector) });
  // Judged after the answers arrived, on the server's clock as their Date headers tell it.
  const base: JudgeContext = { nowMs: c.now(), policies: o.policies, helmHooks: o.helmHooks };
  const summaries = lists.map(({ kind, items }) => ({
    kind,
    objs: items.map((raw) => summarize(kind, raw, o.policies)),
  }));
  // history / keepLatest rank each object among its listed group.
  const ctx = withRanks(
    base,
    summaries.flatMap((s) => s.objs),
  );
  const rows: Row[] = [];
  for (const { kind, objs } of summaries) for (const obj of objs) rows.push(evaluate(kind, obj, ctx));
  return { rows, nowMs: ctx.nowMs, ctx };
}

/** `jobs`, `jobs or pods`, for "No ... found" messages. */
export function kindsText(kinds: readonly KindInfo[]): string {
  return kinds.map((k) => k.resource.plural).join(' or ');
}

export function whereText(namespace: string | undefined): string {
  return namespace === undefined ? 'in any namespace' : `in namespace "${namespace}"`;
}
