/**
 * Time filters for listings and the audit log: an ISO 8601 date or date-time
 * (`2026-11-21`, `2026-11-21T08:00:00Z`), milliseconds since the epoch, or a duration before
 * now (`90s`, `15m`, `2h`, `7d`, `2w`).
 */
import { ApiError } from './api-error.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** Milliseconds since the epoch for `text`, or throws INVALID_REQUEST naming `what`. */
export function parseTime(text: string, what: string, now = Date.now()): number {
  const t = text.trim();
  const dur = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(t);
  if (dur) return now - Number(dur[1]) * UNITS[dur[2]!.toLowerCase()]!;
  if (/^\d{10,}$/.test(t)) return Number(t);
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  throw new ApiError('INVALID_REQUEST', `${what}: ${JSON.stringify(text)} is not a time (use an ISO date like 2026-11-21 or 2026-11-21T08:00:00Z, or a duration like 30m, 2h, 7d)`);
}
