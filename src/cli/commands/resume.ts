// `kttl resume [policy/NAME]`: lets a tripped blast-radius brake go (docs/operations.md "Safety
// rails"). It writes the annotation kttl.dev/resume (the time, so every call is a change) on the
// policy, or — without a policy — on the controller's Lease, whose brake is --max-deletions. The
// controller watches both, so this works whichever replica leads; the deletions that were waiting
// go ahead, later ones count in a new window.
import type { Command } from 'commander';
import { RESUME_ANNOTATION } from '../../controller/safety.ts';
import { LEASES, type ResourceRef } from '../../kube/resources.ts';
import { CLUSTER_TTL_POLICIES, TTL_POLICIES } from '../../policy/store.ts';
import { UserError } from '../errors.ts';
import type { GlobalOptions } from '../program.ts';
import { patchObject, withCluster } from '../shared/cluster.ts';
import { oneLineErrors } from '../shared/options.ts';
import { out } from '../shared/output.ts';

interface ResumeFlags {
  leaseName: string;
}

const POLICY_KINDS: Record<string, ResourceRef> = {
  policy: TTL_POLICIES,
  ttlpolicy: TTL_POLICIES,
  ttlpolicies: TTL_POLICIES,
  'ttlpolicy.kttl.dev': TTL_POLICIES,
  clusterpolicy: CLUSTER_TTL_POLICIES,
  clusterttlpolicy: CLUSTER_TTL_POLICIES,
  clusterttlpolicies: CLUSTER_TTL_POLICIES,
  'clusterttlpolicy.kttl.dev': CLUSTER_TTL_POLICIES,
  ctp: CLUSTER_TTL_POLICIES,
};

/** The object `kttl resume` annotates: a policy (by KIND/NAME), or the Lease. */
export function resumeTarget(
  ref: string | undefined,
  ns: { policy: string; lease: string },
  leaseName: string,
): { resource: ResourceRef; namespace: string; name: string; text: string } {
  if (ref === undefined) {
    const lease = ns.lease;
    return {
      resource: LEASES,
      namespace: lease,
      name: leaseName,
      text: `lease/${leaseName} in namespace "${lease}" (--max-deletions)`,
    };
  }
  const slash = ref.indexOf('/');
  const kind = slash > 0 ? ref.slice(0, slash).toLowerCase() : '';
  const name = slash > 0 ? ref.slice(slash + 1) : '';
  const resource = POLICY_KINDS[kind];
  if (!resource || name === '' || name.includes('/'))
    throw new UserError(
      `"${ref}" is not a policy: expected policy/NAME (a TTLPolicy, with -n) or clusterttlpolicy/NAME; no argument resumes --max-deletions`,
    );
  const namespace = resource.namespaced ? ns.policy : '';
  const text = resource.namespaced
    ? `ttlpolicy/${name} in namespace "${namespace}"`
    : `clusterttlpolicy/${name}`;
  return { resource, namespace, name, text };
}

export function registerResume(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
): void {
  const cmd = program
    .command('resume')
    .description('let a tripped deletion brake go: the deletions it holds go ahead')
    .argument(
      '[policy]',
      'policy/NAME (TTLPolicy, with -n) or clusterttlpolicy/NAME; none: the --max-deletions brake',
    )
    .option(
      '--lease-name <name>',
      "the controller's Lease (--leader-elect-resource-name), in -n (default kttl)",
      'kttl',
    )
    .addHelpText(
      'after',
      `
Writes the annotation ${RESUME_ANNOTATION}=<now> on the policy, or on the controller's Lease for the
brake of kttl run --max-deletions. Raising the limit (maxDeletions, or the flag) also lets it go.

Examples:
  kttl resume policy/nightly -n team-a
  kttl resume clusterttlpolicy/finished-jobs
  kttl resume -n kttl                     # the --max-deletions brake (Lease kttl/kttl)`,
    )
    .action(async (ref: string | undefined, flags: ResumeFlags) => {
      const g = globals();
      // Refused before any request: a bad argument is the user's to fix.
      resumeTarget(ref, { policy: 'default', lease: 'kttl' }, flags.leaseName);
      await withCluster(g, env, async (c) => {
        // A TTLPolicy in -n (else the context's namespace); the Lease in -n, else kttl's own.
        const t = resumeTarget(ref, { policy: c.namespace, lease: g.namespace ?? 'kttl' }, flags.leaseName);
        const at = new Date(c.now()).toISOString();
        await patchObject(c, t.resource, t.namespace, t.name, {
          metadata: { annotations: { [RESUME_ANNOTATION]: at } },
        });
        out(`${t.text}: resume requested (${RESUME_ANNOTATION}=${at})`);
      });
    });
  oneLineErrors(cmd);
}
