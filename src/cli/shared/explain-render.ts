// `kttl explain` output from its model (src/cli/shared/explain-model.ts): the document behind
// `-o json|yaml`, and the text for people.
import type { ExplainModel } from './explain-model.ts';
import { colors, table } from './output.ts';
import { sourceCell, ttlCell } from './rows.ts';
import { isoTime } from './time.ts';

/** The `-o json` / `-o yaml` document. */
export function explainDoc(m: ExplainModel) {
  const f = m.finish;
  const decided = f ? m.decisions[0]?.decision : undefined;
  return {
    object: m.object,
    status: m.status,
    finish: f
      ? {
          outcome: f.outcome,
          reason: f.reason,
          at: f.atMs !== null ? isoTime(f.atMs) : null,
          timeSource: f.timeSource,
        }
      : null,
    candidates: m.candidates.map((c) => ({
      rule: c.rule,
      source: c.source,
      where: c.where,
      value: c.value ?? null,
      results: Object.fromEntries(c.results.map((r) => [r.outcome, { verdict: r.verdict, text: r.text }])),
    })),
    decision: decided ? { ttl: ttlCell(decided), source: sourceCell(decided), text: m.decisionText } : null,
    why: m.why,
    deletion: m.deletion,
    clock: { source: m.clock.source, now: m.clock.now, offsetMs: m.clock.offsetMs },
    blockers: m.blockers,
    policies: m.policies,
    pods: m.pods,
  };
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** The text for people. */
export function explainText(m: ExplainModel): string {
  const col = colors();
  const o = m.object;
  const lines: string[] = [];
  lines.push(`${col.bold(`${o.kind} ${o.namespace}/${o.name}`)}  (${m.refText}, uid ${o.uid})`);
  lines.push(`Status:     ${m.status}${m.finish ? ` (${m.finish.reason})` : ''}`);
  lines.push(`Finished:   ${m.finishText}`);
  lines.push('');
  lines.push('TTL sources, first match wins:');
  const head = [
    'RULE',
    'SOURCE',
    'WHERE',
    'VALUE',
    ...m.outcomes.map((x) => (m.outcomes.length > 1 ? `IF ${x.toUpperCase()}` : 'RESULT')),
  ];
  const body = m.candidates.map((c) => [
    String(c.rule),
    c.source,
    c.where,
    c.value === undefined ? '-' : JSON.stringify(c.value),
    ...c.results.map((r) =>
      r.verdict === 'wins'
        ? col.bold(col.green(r.text))
        : r.verdict === 'invalid'
          ? col.yellow(r.text)
          : r.text,
    ),
  ]);
  lines.push(indent(table(head, body)));
  for (const p of m.policies) lines.push(`  policies: ${p}`);
  lines.push('');
  lines.push(`Decision:   ${m.decisionText}`);
  lines.push(`Why:        ${m.why}`);
  lines.push(`Deletion:   ${m.deletion.text}`);
  if (m.pods !== null) lines.push(`Pods:       ${m.pods}`);
  lines.push(`Clock:      ${m.clock.text}`);
  lines.push(`Blocked by: ${m.blockers.length === 0 ? 'nothing: the TTL has expired' : m.blockers[0]}`);
  for (const b of m.blockers.slice(1)) lines.push(`            ${b}`);
  return lines.join('\n');
}
