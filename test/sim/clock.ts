/**
 * A clock that runs `factor` times faster than real time, for the node's own timers (dial
 * back-off, retries, rescans): with factor 10, a 30 s back-off takes 3 s. Only the node's
 * timers use it; everything compared with the file system stays on real time.
 */
import type { Clock } from '../../src/core/clock.js';

export function scaledClock(factor: number): Clock {
  const origin = Date.now();
  return {
    now: () => origin + (Date.now() - origin) * factor,
    setTimeout: (fn, ms) => setTimeout(fn, Math.max(1, ms / factor)),
    setInterval: (fn, ms) => setInterval(fn, Math.max(1, ms / factor)),
  };
}
