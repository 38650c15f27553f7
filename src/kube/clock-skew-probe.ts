// Extra Date samples for the clock-skew estimate (src/kube/clock-skew.ts), beside the ones ordinary
// answers give: tiny GET /version requests, timed to narrow the estimate.
import type { Clock, TimerHandle } from '../clock.ts';
import { bisectingProbeDelayMs, type ClockSkewEstimator } from './clock-skew.ts';
import type { KubeHttp } from './http.ts';

/** The skew interval width the start-up probes aim for (a local round trip is a few ms). */
const SKEW_TARGET_WIDTH_MS = 30;
/** At most this many quick probes per 5 minutes (a slow network cannot narrow below its round trip). */
const SKEW_MAX_QUICK_PROBES = 12;
const SKEW_QUICK_PERIOD_MS = 5 * 60_000;
/** Between probes once narrow: an odd period keeps sweeping the sub-second phase. */
const SKEW_STEADY_PERIOD_MS = 17_300;
/**
 * After the start-up bisection, quick probes come back only when the interval is wider than this:
 * samples aged out with no other answers to replace them. A width the start-up probes could not
 * narrow (a slow, busy network) is not a reason to probe every 5 minutes.
 */
const SKEW_RENARROW_WIDTH_MS = 250;
/** The start-up bisection (to SKEW_TARGET_WIDTH_MS) happens in this first stretch after start. */
const SKEW_STARTUP_MS = 30_000;

/**
 * GET /version timed to bisect the interval (each answer halves it, so ~10 probes in ~6 s narrow
 * the 1 s Date resolution to a round trip, and expiry judged by the low bound is that much less
 * late), then one every ~17 s (an odd period keeps sweeping the sub-second phase and notices a
 * stepped clock). When samples age out of the estimator's horizon and the interval widens, up to
 * 12 quick probes per 5 minutes narrow it again (to 250 ms). Outside the QPS budget: they are tiny and rare.
 * A steady probe is skipped when another answer gave a sample within its period.
 * The answers reach the estimator through KubeHttp's observer, as every answer does.
 */
export function startSkewProbe(http: KubeHttp, clock: Clock, skew: ClockSkewEstimator): { stop(): void } {
  let stopped = false;
  let timer: TimerHandle | undefined;
  let quick = 0;
  let quickPeriodStart = clock.now();
  const startedAt = clock.now();
  const targetWidth = () =>
    clock.now() - startedAt < SKEW_STARTUP_MS ? SKEW_TARGET_WIDTH_MS : SKEW_RENARROW_WIDTH_MS;
  const tick = async () => {
    if (stopped) return;
    const e0 = skew.estimate();
    const narrowing =
      (e0 === null || e0.highMs - e0.lowMs > targetWidth()) &&
      (quick < SKEW_MAX_QUICK_PROBES || clock.now() - quickPeriodStart >= SKEW_QUICK_PERIOD_MS);
    if (!narrowing && skew.msSinceLastSample() < SKEW_STEADY_PERIOD_MS) {
      // Other answers (the Lease renewed every 2 s, watches' Date headers) keep the estimate fed:
      // an idle controller sends no probe of its own (docs/decisions.md, "No idle polling").
      timer = clock.setTimer(() => void tick(), SKEW_STEADY_PERIOD_MS);
      return;
    }
    const sent = clock.now();
    await http.request('get', 'GET', '/version', { unlimited: true, timeoutMs: 5000 }).catch(() => undefined);
    if (stopped) return;
    const rtt = clock.now() - sent;
    if (clock.now() - quickPeriodStart >= SKEW_QUICK_PERIOD_MS) {
      quick = 0;
      quickPeriodStart = clock.now();
    }
    const e = skew.estimate();
    const narrow = e !== null && e.highMs - e.lowMs > targetWidth() && quick < SKEW_MAX_QUICK_PROBES;
    if (narrow) quick++;
    timer = clock.setTimer(
      () => void tick(),
      narrow ? bisectingProbeDelayMs(e, clock.now(), rtt) : SKEW_STEADY_PERIOD_MS,
    );
  };
  void tick();
  return {
    stop() {
      stopped = true;
      if (timer) clock.clearTimer(timer);
    },
  };
}
