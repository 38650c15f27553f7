// `kttl run`: the controller. Flags carry kube-controller-manager's and controller-runtime's names.
import { type Command, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { DEFAULT_ARCHIVE_DSN } from '../../archive/dsn.ts';
import { systemClock } from '../../clock.ts';
import { type RunOptions, startApp } from '../../controller/app.ts';
import { parseBindAddress } from '../../controller/servers.ts';
import { loadKubeConfig } from '../../kube/config.ts';
import { builtinKindNames } from '../../rules/kinds.ts';
import type { DeletionLimit } from '../../rules/safety.ts';
import { UserError } from '../errors.ts';
import {
  oneOf,
  parseBool,
  parseBytes,
  parseDurationMs,
  parseDurationSeconds,
  parseList,
  parseNumber,
  parsePositiveInt,
} from '../flags.ts';
import type { GlobalOptions } from '../program.ts';
import { notifyOptions, parseMaxDeletions, parseNotifyUrl } from '../shared/safety-flags.ts';
import { parseWebhookBindAddress, type RunWebhookFlags, startRunWebhook } from './webhook.ts';

/** kube-controller-manager's --kube-api-content-type values; its default, protobuf, first. */
const CONTENT_TYPES = ['application/vnd.kubernetes.protobuf', 'application/json'] as const;

interface RunFlags extends RunWebhookFlags {
  kubeApiQps: number;
  kubeApiBurst: number;
  kubeApiContentType: (typeof CONTENT_TYPES)[number];
  dryRun: boolean;
  nativeJobs: 'handle' | 'leave';
  helmHooks: boolean;
  namespaces?: string[];
  excludeNamespaces?: string[];
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  workers: number;
  resyncPeriod: number;
  leaderElect: boolean;
  leaderElectResourceNamespace?: string;
  leaderElectResourceName: string;
  leaderElectLeaseDuration: number;
  leaderElectRenewDeadline: number;
  leaderElectRetryPeriod: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  eventQps: number;
  eventBurst: number;
  logLevel: string;
  pods: boolean;
  policies: boolean;
  clusterPolicies: boolean;
  builtinKinds: boolean;
  watchCrds: boolean;
  kinds?: string[];
  archive: 'off' | 'best-effort' | 'required';
  archiveDsn: string;
  archiveLogs: boolean;
  archiveLogLines: number;
  archiveLogBytes: number;
  archiveRetention: number;
  archiveMaxSize: number;
  archiveQps?: number;
  archiveBurst?: number;
  clusterName: string;
  archiveApiBindAddress?: string;
  archiveApiTlsCertFile?: string;
  archiveApiTlsPrivateKeyFile?: string;
  maxDeletions?: DeletionLimit;
  noticeBefore?: number;
  notifyUrl?: string[];
  notifyFormat: 'cloudevents' | 'slack';
  notifyCaFile?: string;
  notifyTokenFile?: string;
  notifyHmacKeyFile?: string;
  notifyBatchMax: number;
}

/** Archive reads for a Job with one pod: the object, its pods, the log, two Event lists. */
const ARCHIVE_READS_PER_DELETION = 5;

export function registerRun(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
): void {
  program
    .command('run')
    .description('run the controller: delete finished objects when their TTL expires')
    .option('--kube-api-qps <qps>', 'QPS to use while talking with the API server', parseNumber, 20)
    .option('--kube-api-burst <n>', 'burst to use while talking with the API server', parsePositiveInt, 30)
    .addOption(
      new Option(
        '--kube-api-content-type <type>',
        'encoding of the watched Jobs and Pods (custom resources are always JSON)',
      )
        .argParser(oneOf(CONTENT_TYPES))
        .default(CONTENT_TYPES[0]),
    )
    .option('--dry-run [bool]', 'log and count what would be deleted; delete nothing', parseBool, false)
    .addOption(
      new Option(
        '--native-jobs <mode>',
        'Jobs whose only TTL is .spec.ttlSecondsAfterFinished: handle them too, or leave them to the native controller',
      )
        .argParser(oneOf(['handle', 'leave'] as const))
        .default('handle'),
    )
    .option(
      '--helm-hooks [bool]',
      'honour helm.sh/hook-delete-policy like kots.io/hook-delete-policy',
      parseBool,
      true,
    )
    .option('--namespaces <list>', 'only these namespaces (comma-separated; default all)', parseList)
    .option('--exclude-namespaces <list>', 'never these namespaces', parseList)
    .addOption(
      new Option(
        '--propagation-policy <policy>',
        'override the default propagation (Jobs Foreground, others Background)',
      ).argParser(oneOf(['Foreground', 'Background', 'Orphan'] as const)),
    )
    .option('--workers <n>', 'concurrent deletions in flight', parsePositiveInt, 10)
    .option(
      '--resync-period <duration>',
      're-judge every cached object this often',
      parseDurationMs,
      10 * 60_000,
    )
    .option('--leader-elect [bool]', 'elect a leader on a Lease before deleting', parseBool, true)
    .option(
      '--leader-elect-resource-namespace <ns>',
      'namespace of the Lease (default: own namespace in a cluster, else kube-system)',
    )
    .option('--leader-elect-resource-name <name>', 'name of the Lease', 'kttl')
    .option('--leader-elect-lease-duration <d>', 'lease duration', parseDurationMs, 15_000)
    .option('--leader-elect-renew-deadline <d>', 'renew deadline', parseDurationMs, 10_000)
    .option('--leader-elect-retry-period <d>', 'retry period', parseDurationMs, 2_000)
    .option('--metrics-bind-address <addr>', 'address of /metrics ("0" turns it off)', ':8080')
    .option(
      '--health-probe-bind-address <addr>',
      'address of /healthz and /readyz ("0" turns it off)',
      ':8081',
    )
    .option(
      '--event-qps <qps>',
      'budget for Kubernetes Events (separate from the API budget; excess events are dropped)',
      parseNumber,
      5,
    )
    .option('--event-burst <n>', 'burst for Kubernetes Events', parsePositiveInt, 25)
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .option(
      '--pods [bool]',
      'also clean up finished Pods (bare ones; Pods of a Job only when a policy names Pods)',
      parseBool,
      true,
    )
    .option('--policies [bool]', 'read TTLPolicy/ClusterTTLPolicy (kttl.dev/v1alpha1)', parseBool, true)
    .option(
      '--cluster-policies [bool]',
      'read ClusterTTLPolicy and namespace labels (false: TTLPolicy in --namespaces only, no cluster-wide read)',
      parseBool,
      true,
    )
    .option(
      '--builtin-kinds [bool]',
      `watch the built-in custom kinds (${builtinKindNames()}) when installed`,
      parseBool,
      true,
    )
    .option('--kinds <list>', 'more custom kinds to watch, as group/Kind (comma-separated)', parseList)
    .option(
      '--watch-crds [bool]',
      'learn of installed kinds from a watch on CRDs and APIServices (metadata only) instead of polling discovery every 30 s; needs list/watch on them',
      parseBool,
      true,
    )
    .addOption(
      new Option(
        '--archive <mode>',
        "record each object (and its pods' last logs and Events) before deleting it: off, best-effort, or required (no record, no deletion); a policy's archive wins",
      )
        .argParser(oneOf(['off', 'best-effort', 'required'] as const))
        .default('off'),
    )
    .option(
      '--archive-dsn <dsn>',
      'where records go: postgres://… for PostgreSQL, else a SQLite file path',
      DEFAULT_ARCHIVE_DSN,
    )
    .option('--archive-logs [bool]', 'archive the last lines of each container log', parseBool, true)
    .option('--archive-log-lines <n>', 'lines per container', parsePositiveInt, 200)
    .option('--archive-log-bytes <size>', 'bytes per container at most', parseBytes, 256 * 1024)
    .option(
      '--archive-retention <duration>',
      'drop records deleted longer ago than this',
      parseDurationMs,
      90 * 86_400_000,
    )
    .option(
      '--archive-max-size <size>',
      'drop the oldest records beyond this total size (0: no cap)',
      parseBytes,
      10 * 2 ** 30,
    )
    .option(
      '--archive-qps <qps>',
      "budget of the archive's reads (logs, Events, the object), apart from --kube-api-qps (default 5 × --kube-api-qps: a Job with one pod takes 5 reads)",
      parseNumber,
    )
    .option(
      '--archive-burst <n>',
      "burst of the archive's reads (default 5 × --kube-api-burst)",
      parsePositiveInt,
    )
    .option(
      '--cluster-name <name>',
      "the cluster's name in archive records (one archive may serve several)",
      'default',
    )
    .option(
      '--archive-api-bind-address <addr>',
      'address of the archive read API (APIService v1alpha1.archive.kttl.dev, kubectl get deletedobjects); 0 turns it off (default :8443 when --archive is not off, else off)',
      parseArchiveApiBindAddress,
    )
    .option('--archive-api-tls-cert-file <file>', 'archive API serving certificate (default: self-signed)')
    .option('--archive-api-tls-private-key-file <file>', 'its private key')
    .option(
      '--max-deletions <N/D>',
      'blast-radius brake: past N deletions within any D (e.g. 500/10m) the rest pause until `kttl resume`; a policy has its own maxDeletions (default off)',
      parseMaxDeletions,
    )
    .option(
      '--notice-before <duration>',
      "a Normal Event DeletionScheduled this long before each expiry (objects whose TTL is longer); a policy's noticeBefore wins",
      parseDurationSeconds,
    )
    .option(
      '--notify-url <url>',
      'send deletions, notices, invalid TTLs, brake trips and archive failures to this HTTPS URL (repeatable)',
      parseNotifyUrl,
    )
    .addOption(
      new Option(
        '--notify-format <format>',
        'cloudevents (JSON, structured; several at once: batch) or slack',
      )
        .argParser(oneOf(['cloudevents', 'slack'] as const))
        .default('cloudevents'),
    )
    .option(
      '--notify-ca-file <file>',
      'CA bundle (PEM) to trust for --notify-url (default: the system roots)',
    )
    .option(
      '--notify-token-file <file>',
      'send "Authorization: Bearer <file contents>" (read before every send)',
    )
    .option(
      '--notify-hmac-key-file <file>',
      'sign each body: header X-Kttl-Signature-256: sha256=<HMAC-SHA256 hex> with the key in this file',
    )
    .option(
      '--notify-batch-max <n>',
      'notifications per request at most (1: one CloudEvent per request)',
      parsePositiveInt,
      100,
    )
    .option('--webhook [bool]', 'also serve the admission webhook (see kttl webhook)', parseBool, false)
    .option(
      '--webhook-bind-address <addr>',
      'address of the webhook',
      parseWebhookBindAddress,
      '0.0.0.0:9443',
    )
    .option('--tls-cert-file <file>', 'webhook serving certificate (reloaded; default: self-signed)')
    .option('--tls-private-key-file <file>', 'its private key')
    .addHelpText(
      'after',
      `
Examples:
  kttl run                                   # all namespaces but kube-system, leader election on
  kttl run --dry-run --leader-elect=false    # see what would be deleted
  kttl run --namespaces team-a,team-b --kube-api-qps 50 --kube-api-burst 100`,
    )
    .action(async (flags: RunFlags) => {
      const g = globals();
      const logger = pino({ level: flags.logLevel, base: { app: 'kttl' } });
      const loaded = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context, env });
      if (flags.leaderElectRenewDeadline >= flags.leaderElectLeaseDuration) {
        throw new UserError(
          '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration',
        );
      }
      if (!flags.archiveApiTlsCertFile !== !flags.archiveApiTlsPrivateKeyFile) {
        throw new UserError(
          '--archive-api-tls-cert-file and --archive-api-tls-private-key-file go together (or neither: self-signed)',
        );
      }
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      const opts: RunOptions = {
        kubeApiQps: flags.kubeApiQps,
        kubeApiBurst: flags.kubeApiBurst,
        protobuf: flags.kubeApiContentType === CONTENT_TYPES[0],
        dryRun: flags.dryRun,
        nativeJobs: flags.nativeJobs,
        helmHooks: flags.helmHooks,
        namespaces: flags.namespaces ?? (g.namespace ? [g.namespace] : []),
        excludeNamespaces: flags.excludeNamespaces ?? ['kube-system'],
        propagationPolicy: flags.propagationPolicy,
        workers: flags.workers,
        resyncMs: flags.resyncPeriod,
        leaderElect: flags.leaderElect,
        leaderElectNamespace:
          flags.leaderElectResourceNamespace ?? (loaded.inCluster ? loaded.namespace : 'kube-system'),
        leaderElectName: flags.leaderElectResourceName,
        leaseDurationMs: flags.leaderElectLeaseDuration,
        renewDeadlineMs: flags.leaderElectRenewDeadline,
        retryPeriodMs: flags.leaderElectRetryPeriod,
        metricsBindAddress: flags.metricsBindAddress,
        healthProbeBindAddress: flags.healthProbeBindAddress,
        eventQps: flags.eventQps,
        eventBurst: flags.eventBurst,
        pods: flags.pods,
        policies: flags.policies,
        clusterPolicies: flags.clusterPolicies,
        builtinKinds: flags.builtinKinds,
        watchCrds: flags.watchCrds,
        kinds: flags.kinds?.map(parseKindFlag),
        archive: {
          mode: flags.archive,
          dsn: flags.archiveDsn,
          clusterName: flags.clusterName,
          logs: flags.archiveLogs,
          logLines: flags.archiveLogLines,
          logBytes: flags.archiveLogBytes,
          retentionMs: flags.archiveRetention,
          maxBytes: flags.archiveMaxSize,
          // A Job with one pod takes 5 archive reads per DELETE (docs/archive.md): 5 × the main
          // budget keeps archiving from slowing the drain (bench/archive.ts).
          qps: flags.archiveQps ?? ARCHIVE_READS_PER_DELETION * flags.kubeApiQps,
          burst: flags.archiveBurst ?? ARCHIVE_READS_PER_DELETION * flags.kubeApiBurst,
        },
        safety: {
          ...(flags.maxDeletions ? { maxDeletions: flags.maxDeletions } : {}),
          ...(flags.noticeBefore ? { noticeBeforeSeconds: flags.noticeBefore } : {}),
          ...notifyOptions(flags),
        },
        archiveApi: {
          // Nothing to read without an archive: the bare binary opens no port unless asked to.
          bindAddress: flags.archiveApiBindAddress ?? (flags.archive === 'off' ? '0' : ':8443'),
          tls:
            flags.archiveApiTlsCertFile && flags.archiveApiTlsPrivateKeyFile
              ? { certFile: flags.archiveApiTlsCertFile, keyFile: flags.archiveApiTlsPrivateKeyFile }
              : null,
        },
      };
      logger.info(
        { cluster: loaded.kubeConfig.getCurrentCluster()?.server, from: loaded.origin, ...opts },
        'starting kttl controller',
      );
      const app = await startApp(opts, {
        kubeConfig: loaded.kubeConfig,
        clock: systemClock,
        logger,
        registry,
      });
      logger.info({ metricsPort: app.metricsPort, healthPort: app.healthPort }, 'serving metrics and health');
      const webhook = await startRunWebhook(flags, app.policyStore, logger).catch(async (err) => {
        await app.stop();
        throw err;
      });
      const stopped = new Promise<number>((resolve) => {
        const onSignal = (sig: string) => {
          logger.info({ signal: sig }, 'shutting down');
          resolve(0);
        };
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
        void app.lost.then(() => resolve(1));
      });
      const code = await stopped;
      await webhook?.stop();
      await app.stop();
      logger.flush?.();
      process.exitCode = code;
    });
}

/** `host:port`, `:port` or `0` (off). */
export function parseArchiveApiBindAddress(s: string): string {
  try {
    parseBindAddress(s);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return s;
}

/** `group/Kind` (or `Kind` for the core group) from a flag. */
export function parseKindFlag(s: string): { group: string; kind: string } {
  const i = s.lastIndexOf('/');
  return i < 0 ? { group: '', kind: s } : { group: s.slice(0, i), kind: s.slice(i + 1) };
}
