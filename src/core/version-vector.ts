/**
 * Version vectors: {shortDeviceId: counter}. They order the versions of one path across
 * devices; two versions neither of which dominates the other are concurrent (a conflict).
 * Vectors are plain frozen-by-convention objects so they serialize as JSON unchanged.
 */
export type VersionVector = Readonly<Record<string, number>>;

export type Ordering = 'equal' | 'greater' | 'lesser' | 'concurrent';

/** How `a` relates to `b`. */
export function compareVersions(a: VersionVector, b: VersionVector): Ordering {
  let aAhead = false;
  let bAhead = false;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = counter(a, key);
    const y = counter(b, key);
    if (x > y) aAhead = true;
    else if (y > x) bAhead = true;
    if (aAhead && bAhead) return 'concurrent';
  }
  if (aAhead) return 'greater';
  if (bAhead) return 'lesser';
  return 'equal';
}

/** Whether a holder of `a` has seen version `b`: `a` is `b` or newer. */
export function hasSeen(a: VersionVector, b: VersionVector): boolean {
  const order = compareVersions(a, b);
  return order === 'equal' || order === 'greater';
}

/**
 * The vector after `device` changed the file. The counter jumps to at least the current
 * Unix time in seconds, so a device whose database was lost still produces counters that
 * beat its old ones (the trick Syncthing uses).
 */
export function bumpVersion(v: VersionVector, device: string, nowSeconds = Math.floor(Date.now() / 1000)): VersionVector {
  const next = Math.max(counter(v, device) + 1, nowSeconds);
  return { ...v, [device]: next };
}

/** The least vector that dominates both. */
export function mergeVersions(a: VersionVector, b: VersionVector): VersionVector {
  const out: Record<string, number> = { ...a };
  for (const [key, value] of Object.entries(b)) out[key] = Math.max(counter(a, key), value);
  return out;
}

export function isValidVersionVector(v: unknown): v is VersionVector {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const entries = Object.entries(v);
  if (entries.length > 10_000) return false;
  return entries.every(([k, n]) => VALID_KEY.test(k) && !(k in Object.prototype) && Number.isSafeInteger(n) && (n as number) >= 0);
}

/** Keys are short device IDs: letters and digits only, so never a path or a prototype name. */
const VALID_KEY = /^[A-Za-z0-9]{1,64}$/;

/** A counter read as an own property only (never something inherited from Object.prototype). */
function counter(v: VersionVector, key: string): number {
  return Object.hasOwn(v, key) ? v[key]! : 0;
}
