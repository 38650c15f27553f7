// `kttl webhook` (the admission webhook server) and `kttl webhook config` (its registration).
// Serving itself is src/webhook/serve.ts.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import pino, { type Logger } from 'pino';
import { systemClock } from '../../clock.ts';
import { parseBindAddress } from '../../controller/servers.ts';
import { loadKubeConfig } from '../../kube/config.ts';
import { KubeHttp } from '../../kube/http.ts';
import { TokenBucket } from '../../kube/token-bucket.ts';
import { PolicyStore } from '../../policy/store.ts';
import { builtinKindNames } from '../../rules/kinds.ts';
import { type WebhookResource, webhookConfigurationYaml } from '../../webhook/config.ts';
import { developmentTls, serveWebhook } from '../../webhook/serve.ts';
import type { PolicySource, WebhookServer } from '../../webhook/server.ts';
import { UserError } from '../errors.ts';
import { oneOf, parseBool, parseList, parseNumber, parsePositiveInt } from '../flags.ts';
import type { GlobalOptions } from '../program.ts';

export const DEFAULT_WEBHOOK_BIND_ADDRESS = '0.0.0.0:9443';

export interface WebhookTlsFlags {
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
}

function parseBind(value: string): string {
  try {
    if (parseBindAddress(value) === null) throw new Error('the webhook cannot be turned off with "0"');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

/**
 * Starts the webhook server for `kttl webhook` and `kttl run --webhook`, with its failures as one
 * clear line.
 */
export async function startWebhook(o: {
  bindAddress: string;
  tls: WebhookTlsFlags;
  policies: PolicySource;
  ready: () => boolean;
  logger: Logger;
}): Promise<WebhookServer> {
  const { tlsCertFile, tlsPrivateKeyFile } = o.tls;
  if ((tlsCertFile === undefined) !== (tlsPrivateKeyFile === undefined)) {
    throw new UserError('--tls-cert-file and --tls-private-key-file go together');
  }
  // The self-signed pair is made outside the try: its errors are not about the user's files.
  const tls =
    tlsCertFile !== undefined && tlsPrivateKeyFile !== undefined
      ? { certFile: tlsCertFile, keyFile: tlsPrivateKeyFile }
      : await developmentTls(o.logger);
  try {
    return await serveWebhook({
      bindAddress: o.bindAddress,
      tls,
      policies: o.policies,
      ready: o.ready,
      logger: o.logger,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new UserError(`cannot read ${e.path ?? 'a TLS file'}: no such file`);
    if (e.code === 'EADDRINUSE')
      throw new UserError(`--bind-address ${o.bindAddress}: address already in use`);
    if (e.code === 'EACCES') throw new UserError(`--bind-address ${o.bindAddress}: permission denied`);
    if (/not a PEM certificate|not the private key/.test(e.message)) throw new UserError(e.message);
    throw err;
  }
}

function parseResource(value: string, previous: WebhookResource[] | undefined): WebhookResource[] {
  const out = [...(previous ?? [])];
  for (const item of parseList(value, undefined)) {
    const i = item.lastIndexOf('/');
    const group = i < 0 ? '' : item.slice(0, i);
    const resource = i < 0 ? item : item.slice(i + 1);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(resource) || (group !== '' && !/^[a-z0-9.-]+$/.test(group))) {
      throw new InvalidArgumentError(`"${item}" is not group/resource (e.g. example.com/builds)`);
    }
    out.push({ group, resource });
  }
  return out;
}

interface WebhookFlags extends WebhookTlsFlags {
  bindAddress: string;
  kubeApiQps: number;
  kubeApiBurst: number;
  logLevel: string;
}

interface ConfigFlags {
  url?: string;
  service?: string;
  caBundleFile: string;
  namespace?: string;
  timeoutSeconds: number;
  failurePolicy: 'Ignore' | 'Fail';
  pods: boolean;
  builtinKinds: boolean;
  resources?: WebhookResource[];
}

export function registerWebhook(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
): void {
  const webhook = program
    .command('webhook')
    .description('run the mutating admission webhook: stamps TTLs from policies on CREATE (HTTPS /mutate)')
    .option('--bind-address <addr>', 'address to serve HTTPS on', parseBind, DEFAULT_WEBHOOK_BIND_ADDRESS)
    .option('--tls-cert-file <file>', 'serving certificate (PEM; reloaded when it changes)')
    .option('--tls-private-key-file <file>', 'its private key (PEM; reloaded when it changes)')
    .option('--kube-api-qps <qps>', 'QPS to use while talking with the API server', parseNumber, 5)
    .option('--kube-api-burst <n>', 'burst to use while talking with the API server', parsePositiveInt, 10)
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .addHelpText(
      'after',
      `
Without --tls-cert-file/--tls-private-key-file a self-signed pair is made for development.

Examples:
  kttl webhook --tls-cert-file /certs/tls.crt --tls-private-key-file /certs/tls.key
  kttl webhook config --url https://10.0.0.5:9443/mutate --ca-bundle-file ca.crt | kubectl apply -f -`,
    )
    .action(async (flags: WebhookFlags) => {
      const g = globals();
      const logger = pino({ level: flags.logLevel, base: { app: 'kttl', component: 'webhook' } });
      const loaded = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context, env });
      const http = new KubeHttp({
        kubeConfig: loaded.kubeConfig,
        clock: systemClock,
        limiter: new TokenBucket({ qps: flags.kubeApiQps, burst: flags.kubeApiBurst, clock: systemClock }),
        userAgent: 'kttl-webhook',
      });
      const store = new PolicyStore({
        http,
        clock: systemClock,
        logger: logger.child({ component: 'policies' }),
      });
      let synced = false;
      void store.synced.then(() => {
        synced = true;
        logger.info({ policies: store.policies().length }, 'policies listed; ready');
      });
      store.start();
      let server: WebhookServer;
      try {
        server = await startWebhook({
          bindAddress: flags.bindAddress,
          tls: flags,
          policies: store,
          ready: () => synced,
          logger,
        });
      } catch (err) {
        await store.stop();
        await http.close();
        throw err;
      }
      logger.info(
        { cluster: loaded.kubeConfig.getCurrentCluster()?.server, from: loaded.origin, port: server.port },
        'kttl webhook started',
      );
      await new Promise<void>((resolve) => {
        const onSignal = (sig: string) => {
          logger.info({ signal: sig }, 'shutting down');
          resolve();
        };
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      });
      await server.stop();
      await store.stop();
      await http.close();
      logger.flush?.();
    });

  webhook
    .command('config')
    .description(
      'print the MutatingWebhookConfiguration that registers the webhook (YAML, for kubectl apply)',
    )
    .option('--url <url>', 'where the API server reaches the webhook, e.g. https://HOST:9443/mutate')
    .option('--service <name[:port]>', "or: a Service in kttl's namespace (port 443 by default)")
    .requiredOption(
      '--ca-bundle-file <file>',
      "PEM CA certificate(s) that verify the webhook's serving certificate",
    )
    .option('-n, --namespace <ns>', "kttl's own namespace (never mutated; the Service's namespace)", 'kttl')
    .option('--timeout-seconds <n>', 'how long the API server waits (1-30)', parsePositiveInt, 5)
    .addOption(
      new Option('--failure-policy <policy>', 'what the API server does when the webhook fails')
        .argParser(oneOf(['Ignore', 'Fail'] as const))
        .default('Ignore'),
    )
    .option('--pods [bool]', 'also stamp Pods (every Pod create then calls the webhook)', parseBool, true)
    .option(
      '--builtin-kinds [bool]',
      `also the built-in custom kinds (${builtinKindNames()})`,
      parseBool,
      true,
    )
    .option(
      '--resources <list>',
      'more custom resources as group/resource (e.g. example.com/builds)',
      parseResource,
    )
    .addHelpText(
      'after',
      `
Examples:
  kttl webhook config --url https://10.0.0.5:9443/mutate --ca-bundle-file ca.crt | kubectl apply -f -
  kttl webhook config --service kttl-webhook --ca-bundle-file ca.crt -n kttl --timeout-seconds 3`,
    )
    .action((flags: ConfigFlags) => {
      // -n/--namespace is also a global flag: whichever parser took it, it means kttl's namespace here.
      const namespace = globals().namespace ?? flags.namespace ?? 'kttl';
      let caBundlePem: string;
      try {
        caBundlePem = readFileSync(flags.caBundleFile, 'utf8');
      } catch (err) {
        throw new UserError(`cannot read --ca-bundle-file ${flags.caBundleFile}: ${(err as Error).message}`);
      }
      let service: { name: string; port?: number } | undefined;
      if (flags.service !== undefined) {
        const [name = '', port] = flags.service.split(':');
        service = port === undefined ? { name } : { name, port: Number(port) };
      }
      try {
        const yaml = webhookConfigurationYaml({
          url: flags.url,
          service,
          caBundlePem,
          namespace,
          timeoutSeconds: flags.timeoutSeconds,
          failurePolicy: flags.failurePolicy,
          pods: flags.pods,
          builtinKinds: flags.builtinKinds,
          resources: flags.resources,
        });
        process.stdout.write(yaml);
      } catch (err) {
        throw new UserError(
          (err as Error).message.replace(
            /^--ca-bundle-file|^the CA bundle/,
            `--ca-bundle-file ${flags.caBundleFile}`,
          ),
        );
      }
    });
}

/** `kttl run --webhook`: the flags run.ts declares. */
export interface RunWebhookFlags extends WebhookTlsFlags {
  webhook: boolean;
  webhookBindAddress: string;
}

/**
 * `kttl run --webhook`: the webhook beside the controller, on the controller's PolicyStore (one
 * list+watch for both). Served by every replica, leader or not. Null when --webhook is off.
 */
export async function startRunWebhook(
  flags: RunWebhookFlags,
  store: PolicyStore | null,
  logger: Logger,
): Promise<WebhookServer | null> {
  if (!flags.webhook) return null;
  if (store === null) throw new UserError('--webhook needs policies: drop --policies=false');
  let synced = false;
  void store.synced.then(() => {
    synced = true;
  });
  const server = await startWebhook({
    bindAddress: flags.webhookBindAddress,
    tls: flags,
    policies: store,
    ready: () => synced,
    logger: logger.child({ component: 'webhook' }),
  });
  logger.info({ port: server.port }, 'serving the admission webhook');
  return server;
}

export { parseBind as parseWebhookBindAddress };
