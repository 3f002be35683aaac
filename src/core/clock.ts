/**
 * Time as the node's own timers see it: dial back-off, retries, periodic rescans. The real
 * node uses the system clock; a simulation passes a faster one so a 30 s back-off or a 5 s
 * retry takes a fraction of that, while the code under test stays the same. Times that are
 * compared with the file system (mtimes, the scanner's racy window) always use Date.now().
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  setInterval(fn: () => void, ms: number): NodeJS.Timeout;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
};
