/**
 * Slows down password guessing: after a failed login for a (user, address) pair, the next
 * attempt from that pair is refused until a delay has passed, doubling with each failure
 * (0.5 s, 1 s, 2 s … at most 5 min). A success clears the pair. In memory only: a restart
 * forgets, which costs an attacker a restart of someone else's node.
 */
const BASE_MS = 500;
const MAX_MS = 5 * 60_000;
const MAX_KEYS = 100_000;

interface Failures {
  count: number;
  blockedUntil: number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Milliseconds until `user` may try again from `address` (0: now). */
  waitMs(user: string, address: string): number {
    const f = this.failures.get(key(user, address));
    return f ? Math.max(0, f.blockedUntil - this.now()) : 0;
  }

  failed(user: string, address: string): number {
    const k = key(user, address);
    const f = this.failures.get(k) ?? { count: 0, blockedUntil: 0 };
    f.count++;
    const delay = Math.min(MAX_MS, BASE_MS * 2 ** Math.min(f.count - 1, 20));
    f.blockedUntil = this.now() + delay;
    this.failures.delete(k);
    this.failures.set(k, f);
    if (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value!);
    return delay;
  }

  succeeded(user: string, address: string): void {
    this.failures.delete(key(user, address));
  }
}

function key(user: string, address: string): string {
  return `${user}\0${address}`;
}
