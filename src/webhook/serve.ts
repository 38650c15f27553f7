// Serving the admission webhook over TLS: the given certificate files (reloaded when they change)
// or, without them, a self-signed pair for development. The command line lives in
// src/cli/commands/webhook.ts.
import type { Logger } from 'pino';
import {
  type PolicySource,
  selfSignedPair,
  startWebhookServer,
  type TlsFiles,
  type WebhookServer,
} from './server.ts';

export interface ServeWebhookOptions {
  bindAddress: string;
  /** The serving certificate and key (PEM files); null: a self-signed development pair. */
  tls: TlsFiles | null;
  policies: PolicySource;
  ready: () => boolean;
  logger: Logger;
}

/** A self-signed pair, with a warning that says how to register it. */
export async function developmentTls(logger: Logger): Promise<TlsFiles> {
  const files = await selfSignedPair();
  logger.warn(
    { certFile: files.certFile },
    'no --tls-cert-file/--tls-private-key-file: serving a self-signed certificate for development; ' +
      `register it with: kttl webhook config --url https://HOST:PORT/mutate --ca-bundle-file ${files.certFile}`,
  );
  return files;
}

export async function serveWebhook(o: ServeWebhookOptions): Promise<WebhookServer> {
  return startWebhookServer({
    bindAddress: o.bindAddress,
    tls: o.tls ?? (await developmentTls(o.logger)),
    policies: o.policies,
    ready: o.ready,
    logger: o.logger,
  });
}
