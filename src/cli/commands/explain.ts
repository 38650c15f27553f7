// `kttl explain KIND/NAME`: the controller's verdict on one object (src/rules/verdict.ts), shown
// whole: every TTL source with its value, which one wins and why, the finish time and where it
// comes from, the exact deletion time on the API server's clock, and what blocks deletion. The
// model and its renderers are src/cli/shared/explain-model.ts and explain-render.ts.
import type { Command } from 'commander';
import { Option } from 'commander';
import type { GlobalOptions } from '../program.ts';
import { getObject, listObjects, withCluster } from '../shared/cluster.ts';
import { explainModel } from '../shared/explain-model.ts';
import { explainDoc, explainText } from '../shared/explain-render.ts';
import { kindResolver, kindsHelp } from '../shared/kinds.ts';
import { helmHooksOption, nativeJobsOption, oneLineErrors } from '../shared/options.ts';
import { exitQuietlyOnEpipe, json, out, yaml } from '../shared/output.ts';
import { noPolicies, type PolicyProvider, type PolicySource } from '../shared/policies.ts';
import { needsRanks, withRanks } from '../shared/ranks.ts';
import { parseRef, refText } from '../shared/refs.ts';
import { type JudgeContext, summarize, verdictFor } from '../shared/rows.ts';

interface ExplainFlags {
  output: 'text' | 'json' | 'yaml';
  helmHooks: boolean;
  nativeJobs: 'handle' | 'leave';
}

export function registerExplain(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
  policies: PolicySource = noPolicies,
): void {
  const cmd = program
    .command('explain')
    .description('show which rule gives an object its TTL, when it will be deleted, and what blocks it')
    .argument('<ref>', 'KIND/NAME, e.g. job/train-42, pod/worker-0 or workflow/nightly')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'),
    )
    .addOption(helmHooksOption())
    .addOption(nativeJobsOption())
    .addHelpText(
      'after',
      `
Sources are tried top to bottom, first match wins (docs/rules.md):
  1 kttl.dev/keep   2 hook delete policy   3 kttl.dev/ttl-succeeded|-failed, kttl.dev/ttl
  4 Jobs: .spec.ttlSecondsAfterFinished   5 TTLPolicy / ClusterTTLPolicy
The deletion time is judged on the API server's clock (the Date header of the GET response);
if the server sends none, on this machine's clock, and the output says which.

Examples:
  kttl explain job/train-42
  kttl explain pod/worker-0 -n team-a
  kttl explain job/train-42 -o json | jq .deletion`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (refArg: string, flags: ExplainFlags) => {
      exitQuietlyOnEpipe();
      const spelling = parseRef(refArg);
      await withCluster(globals(), env, async (c) => {
        const ref = await kindResolver(c).resolveRef(spelling);
        const raw = await getObject(c, ref.kind.resource, c.namespace, ref.name);
        const provider: PolicyProvider = await policies(c.http);
        const obj = summarize(ref.kind, raw, provider);
        let ctx: JudgeContext = {
          nowMs: c.now(),
          policies: provider,
          helmHooks: flags.helmHooks,
          nativeJobs: flags.nativeJobs,
        };
        // history / keepLatest: its rank among the finished objects of its kind in its namespace.
        if (needsRanks(obj, ctx)) {
          const siblings = await listObjects(c, ref.kind.resource, obj.namespace || undefined);
          ctx = withRanks(
            ctx,
            siblings.map((raw) => summarize(ref.kind, raw, provider)),
          );
        }
        const model = explainModel({
          obj,
          verdict: verdictFor(obj, ctx),
          refText: refText(ref.kind, obj.name),
          nowMs: ctx.nowMs,
          clock: c.clock(),
          policyLines: provider.explain?.(obj) ?? [],
        });
        if (flags.output === 'text') out(explainText(model));
        else out(flags.output === 'json' ? json(explainDoc(model)) : yaml(explainDoc(model)));
      });
    });
  oneLineErrors(cmd);
}
