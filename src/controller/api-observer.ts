// What the controller learns from every API answer: request metrics, outages (for the log and to
// re-judge after one) and Date headers for the clock-skew estimate.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { ClockSkewEstimator } from '../kube/clock-skew.ts';
import type { RequestObserver } from '../kube/http.ts';
import type { Metrics } from './metrics.ts';

/**
 * Outage tracking: a request that got no answer at all (connection refused, reset, timed out)
 * marks the API server unreachable; the next 2xx ends the outage (`onRecovered`). A 5xx is an
 * answer (an aggregated API that is down answers 503 for good) and does not count.
 */
export function apiObserver(o: {
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  skew: ClockSkewEstimator;
  onRecovered: () => void;
}): RequestObserver {
  const { metrics, logger, clock, skew } = o;
  let apiDown = false;
  let skewWarnedAt = -Infinity;
  return {
    response: (verb, code) => {
      metrics.apiRequests.inc({ verb, code: String(code) });
      if (code === 0) {
        if (!apiDown) logger.warn({ verb }, 'API server not answering: retrying');
        apiDown = true;
      } else if (apiDown && code >= 200 && code < 300) {
        apiDown = false;
        o.onRecovered();
      }
    },
    serverDate: (sent, received, date) => {
      if (skew.observe(sent, received, date) === 'rejected') {
        metrics.clockSkewRejected.inc();
        // Logged at most once a minute: a skewed server behind a load balancer answers often.
        if (clock.now() - skewWarnedAt >= 60_000 || clock.now() < skewWarnedAt) {
          skewWarnedAt = clock.now();
          const e = skew.estimate();
          logger.warn(
            { date, estimateLowMs: e?.lowMs },
            'Date header ahead of the clock-skew estimate: held until other answers agree',
          );
        }
      }
      const e = skew.estimate();
      if (e) metrics.clockSkew.set(e.offsetMs / 1000);
    },
  };
}
