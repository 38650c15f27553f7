// The archive's read API as `kttl run` serves it (--archive-api-bind-address): on the archive's
// store (any replica reads; leadership does not matter), with the given serving pair or a
// self-signed one. The API never stops the controller: when it cannot start (no aggregation layer
// configured, the request-header ConfigMap not readable, the port taken) it says why and tries again.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../clock.ts';
import { KubeHttp } from '../../kube/http.ts';
import { selfSignedPair, type TlsFiles } from '../../webhook/server.ts';
import type { ArchiveStore } from '../types.ts';
import { type ArchiveApiServer, startArchiveApi } from './server.ts';

export interface ServeArchiveApiOptions {
  bindAddress: string;
  /** null: a self-signed pair (development; the APIService then needs its certificate as caBundle). */
  tls: TlsFiles | null;
  store: ArchiveStore;
  kubeConfig: KubeConfig;
  clock: Clock;
  logger: Logger;
  /** Pause between attempts to start (default 30 s). */
  retryMs?: number;
}

export interface ServedArchiveApi {
  /** The running server, once it started. */
  current(): ArchiveApiServer | undefined;
  /** Resolves when the first attempt finished (started or failed). */
  readonly firstAttempt: Promise<void>;
  stop(): Promise<void>;
}

export function serveArchiveApi(o: ServeArchiveApiOptions): ServedArchiveApi {
  const logger = o.logger.child({ component: 'archive-api' });
  const http = new KubeHttp({ kubeConfig: o.kubeConfig, clock: o.clock, userAgent: 'kttl-archive-api' });
  let server: ArchiveApiServer | undefined;
  let stopped = false;
  let timer: TimerHandle | undefined;
  let tls: TlsFiles | undefined = o.tls ?? undefined;

  const attempt = async (): Promise<void> => {
    if (stopped) return;
    try {
      if (!tls) {
        tls = await selfSignedPair();
        logger.warn(
          { certFile: tls.certFile },
          'no --archive-api-tls-cert-file/--archive-api-tls-private-key-file: serving a self-signed certificate; give the APIService this certificate as caBundle',
        );
      }
      const s = await startArchiveApi({
        bindAddress: o.bindAddress,
        tls,
        store: o.store,
        http,
        logger,
        now: () => o.clock.now(),
      });
      if (stopped) await s.stop();
      else server = s;
    } catch (err) {
      logger.warn(
        { err: (err as Error).message, retryInMs: o.retryMs ?? 30_000 },
        'archive API not serving (kubectl get deletedobjects will not answer until it does)',
      );
      if (!stopped) timer = o.clock.setTimer(() => void attempt(), o.retryMs ?? 30_000);
    }
  };
  const firstAttempt = attempt();
  return {
    current: () => server,
    firstAttempt,
    async stop() {
      stopped = true;
      if (timer) o.clock.clearTimer(timer);
      await firstAttempt;
      await server?.stop();
      await http.close();
    },
  };
}
