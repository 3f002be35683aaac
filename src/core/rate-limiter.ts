/**
 * Paces bytes to a rate (`ferry start --max-send-rate` / `--max-recv-rate`): take(n) resolves
 * when n more bytes may go. Up to BURST_MS worth of bytes go at once after an idle spell, so a
 * few small requests are not held back; beyond that each waits its turn, in the order asked.
 */
import { systemClock, type Clock } from './clock.js';

const BURST_MS = 250;

export class RateLimiter {
  /** When the bytes granted so far will have gone at the rate (clock time, ms). */
  private due = 0;

  constructor(
    readonly bytesPerSecond: number,
    private readonly clock: Clock = systemClock,
  ) {
    if (!(bytesPerSecond >= 1) || !Number.isFinite(bytesPerSecond)) throw new RangeError(`rate limit must be at least 1 byte per second, not ${bytesPerSecond}`);
  }

  take(bytes: number): Promise<void> {
    const now = this.clock.now();
    this.due = Math.max(this.due, now) + (bytes / this.bytesPerSecond) * 1000;
    const wait = this.due - now - BURST_MS;
    return wait <= 0 ? Promise.resolve() : new Promise((resolve) => this.clock.setTimeout(resolve, wait));
  }
}

/** A node's two limits, changed in place while it runs (`ferry limits`): whoever holds this sees the current ones. */
export class RateLimits {
  send?: RateLimiter;
  receive?: RateLimiter;

  constructor(private readonly clock: Clock = systemClock) {}

  /** Sets both (undefined: unlimited); returns whether anything changed. */
  set(sendRate: number | undefined, receiveRate: number | undefined): boolean {
    const changed = sendRate !== this.send?.bytesPerSecond || receiveRate !== this.receive?.bytesPerSecond;
    if (sendRate !== this.send?.bytesPerSecond) this.send = sendRate ? new RateLimiter(sendRate, this.clock) : undefined;
    if (receiveRate !== this.receive?.bytesPerSecond) this.receive = receiveRate ? new RateLimiter(receiveRate, this.clock) : undefined;
    return changed;
  }
}
