import { describe, expect, it } from 'vitest';
import type { Clock } from './clock.js';
import { RateLimiter, RateLimits } from './rate-limiter.js';

/** A clock that only moves when told; timers fire as it passes them. */
function manualClock() {
  let now = 0;
  const timers: { at: number; fn: () => void }[] = [];
  const clock: Clock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.push({ at: now + ms, fn });
      return undefined as unknown as NodeJS.Timeout;
    },
    setInterval: () => {
      throw new Error('not used');
    },
  };
  return {
    clock,
    advance(ms: number) {
      now += ms;
      for (const t of timers.filter((t) => t.at <= now)) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
    },
    pending: () => timers.map((t) => t.at),
  };
}

const settled = async (p: Promise<void>) => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('RateLimiter', () => {
  it('lets a quarter second of bytes go at once, then paces each taker in turn', async () => {
    const t = manualClock();
    const limiter = new RateLimiter(1000, t.clock);
    expect(await settled(limiter.take(250))).toBe(true);
    const second = limiter.take(1000); // due at 1250 ms: may go 250 ms before
    const third = limiter.take(500); // due at 1750 ms
    expect(t.pending()).toEqual([1000, 1500]);
    t.advance(999);
    expect(await settled(second)).toBe(false);
    t.advance(1);
    expect(await settled(second)).toBe(true);
    expect(await settled(third)).toBe(false);
    t.advance(500);
    expect(await settled(third)).toBe(true);
  });

  it('does not save up: after an idle spell only the burst goes at once', async () => {
    const t = manualClock();
    const limiter = new RateLimiter(1000, t.clock);
    t.advance(60_000);
    expect(await settled(limiter.take(200))).toBe(true);
    const next = limiter.take(1000);
    expect(t.pending()).toEqual([60_000 + 950]);
    t.advance(950);
    expect(await settled(next)).toBe(true);
  });

  it('refuses a rate that is not one', () => {
    for (const rate of [0, 0.5, -1, Number.NaN, Infinity]) expect(() => new RateLimiter(rate)).toThrow(RangeError);
  });
});

describe('RateLimits', () => {
  it('replaces a limiter only when its rate changes, and says whether anything did', () => {
    const limits = new RateLimits();
    expect(limits.set(undefined, undefined)).toBe(false);
    expect(limits.set(1000, undefined)).toBe(true);
    const send = limits.send!;
    expect([send.bytesPerSecond, limits.receive]).toEqual([1000, undefined]);
    expect(limits.set(1000, 500)).toBe(true);
    expect(limits.send).toBe(send); // its pace goes on
    expect(limits.receive!.bytesPerSecond).toBe(500);
    expect(limits.set(1000, 500)).toBe(false);
    expect(limits.set(undefined, 500)).toBe(true);
    expect(limits.send).toBeUndefined();
  });
});

