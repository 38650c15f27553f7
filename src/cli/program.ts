// The `kttl` command line: global flags as kubectl's, one module per subcommand.
import { Command } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { registerCompletion } from './commands/completion.ts';
import { registerDelete } from './commands/delete.ts';
import { registerExplain } from './commands/explain.ts';
import { registerHistory } from './commands/history.ts';
import { registerList } from './commands/list.ts';
import { registerLogs } from './commands/logs.ts';
import { registerPlan } from './commands/plan.ts';
import { registerResume } from './commands/resume.ts';
import { registerRun } from './commands/run.ts';
import { registerSetTtl } from './commands/set-ttl.ts';
import { registerSubmit } from './commands/submit.ts';
import { registerWebhook } from './commands/webhook.ts';
import { clusterPolicies } from './shared/policy-source.ts';

export interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

// package.json's version: one for the CLI, the image and the chart (scripts/gen-deploy.ts checks Chart.yaml).
export const VERSION: string = pkg.version;

/** The name help and usage show: `kubectl ttl` when kubectl runs this as its plugin (dist/kubectl-ttl). */
export function programName(argv1: string | undefined): string {
  const base = (argv1 ?? '').split('/').pop() ?? '';
  return /^kubectl-ttl(\.m?js)?$/.test(base) ? 'kubectl ttl' : 'kttl';
}

export function buildProgram(env: Record<string, string | undefined>, name = 'kttl'): Command {
  const program = new Command(name)
    .description('Deletes finished Kubernetes workloads (Jobs, Pods, custom resources) after a time to live.')
    .version(VERSION)
    .option('--kubeconfig <path>', 'kubeconfig file (else $KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--context <name>', 'kubeconfig context to use')
    .option('-n, --namespace <ns>', 'namespace')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const globals = () => program.opts<GlobalOptions>();
  registerRun(program, globals, env);
  registerList(program, globals, env, clusterPolicies);
  registerExplain(program, globals, env, clusterPolicies);
  registerSetTtl(program, globals, env, clusterPolicies);
  registerDelete(program, globals, env, clusterPolicies);
  registerSubmit(program, globals, env);
  registerPlan(program, globals, env, clusterPolicies);
  registerWebhook(program, globals, env);
  registerHistory(program, globals, env);
  registerLogs(program, globals, env);
  registerResume(program, globals, env);
  registerCompletion(program);
  return program;
}
