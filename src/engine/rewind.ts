/**
 * Rewinding a directory, or a whole folder, to how it was at a past moment: the remedy when a
 * program or a person damaged many files at once and sync carried the damage to every device.
 * Each file under the path that sync replaced or deleted since then gets back the content it
 * had at that moment, from the version area, as a new edit that syncs everywhere (what it
 * replaces is kept as a version, so a rewind can itself be rewound).
 *
 * The version area holds what sync replaced or deleted on this device, not what was edited
 * here: a file changed here since then, of which no earlier version is kept, is left as it is
 * and listed (another device's version area may hold it). Nothing is deleted either: a file
 * that did not exist then is listed with those, not removed.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, FerryError } from '../core/errors.js';
import { checkRelativePath, isInternalPath } from '../core/paths.js';
import { IgnoreRules } from './ignore-rules.js';
import { restoredEntry, versionsByPath, type RestoreResult, type Versioner } from './versioner.js';

export interface RewindResult {
  /** The moment rewound to (ISO, UTC). */
  readonly asOf: string;
  readonly dryRun: boolean;
  /** Files put back (with a dry run: that would be). */
  readonly restored: RestoreResult['restored'];
  /** Files changed since then of which no earlier version is kept here: left as they are. */
  readonly changedSince: string[];
  /** Files that are as they were then. */
  readonly unchanged: number;
  /** Files that could not be put back (a directory in the way, say), with why; the others are. */
  readonly failed: { path: string; message: string }[];
}

/**
 * Rewinds `under` (a file or directory; '' for the whole folder) to `asOfMs`. Decided per file
 * from its versions (each replaced at a known time) and what is there now:
 * - a version replaced after that moment holds the content of then, if it was written by then;
 * - with none, the file there now is as it was then if it was not modified since.
 */
export async function rewind(versioner: Versioner, under: string, asOfMs: number, opts: { dryRun?: boolean; now?: Date } = {}): Promise<RewindResult> {
  const prefix = under === '' ? '' : checkRelativePath(under);
  const result = {
    asOf: new Date(asOfMs).toISOString(),
    dryRun: opts.dryRun ?? false,
    restored: [] as RestoreResult['restored'][number][],
    changedSince: [] as string[],
    unchanged: 0,
    failed: [] as RewindResult['failed'][number][],
  };
  const versions = versionsByPath(versioner.list(prefix));
  const current = currentFiles(versioner.root, prefix);
  const paths = [...new Set([...versions.keys(), ...current.keys()])].sort();
  for (const path of paths) {
    // Oldest first: the first one replaced after the moment is what was there at the moment.
    const then = (versions.get(path) ?? []).reverse().find((v) => v.replacedAtMs > asOfMs);
    const now = current.get(path);
    if (then && lstatSync(join(versioner.root, then.stored)).mtimeMs <= asOfMs) {
      if (now && (await sameBytes(join(versioner.root, then.stored), join(versioner.root, path), now))) {
        result.unchanged++;
      } else {
        try {
          const kept = opts.dryRun ? undefined : (await versioner.restore(then, opts.now)).kept;
          result.restored.push(restoredEntry(then, kept));
        } catch (err) {
          result.failed.push({ path, message: errorMessage(err) });
        }
      }
    } else if (now) {
      if (!then && now.mtimeMs <= asOfMs) result.unchanged++;
      else result.changedSince.push(path);
    }
  }
  return result;
}

/** Regular files under `prefix` (the file itself when it is one) that sync would carry, with their stats. */
function currentFiles(root: string, prefix: string): Map<string, Stats> {
  const files = new Map<string, Stats>();
  const rules = IgnoreRules.load(root);
  const visit = (rel: string) => {
    if (rel !== '' && (isInternalPath(rel) || rules.ignores(rel))) return;
    const st = lstatSync(join(root, rel), { throwIfNoEntry: false });
    if (st?.isFile()) files.set(rel, st);
    if (!st?.isDirectory()) return;
    for (const name of readdirSync(join(root, rel))) visit(rel === '' ? name : `${rel}/${name}`);
  };
  visit(prefix);
  return files;
}

/** Whether two files hold the same bytes (`bStat` is b's, taken already). */
async function sameBytes(a: string, b: string, bStat: Stats): Promise<boolean> {
  if (lstatSync(a).size !== bStat.size) return false;
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const bufA = Buffer.allocUnsafe(1 << 20);
    const bufB = Buffer.allocUnsafe(1 << 20);
    for (let at = 0; ; ) {
      const [ra, rb] = await Promise.all([fa.read(bufA, 0, bufA.length, at), fb.read(bufB, 0, bufB.length, at)]);
      if (ra.bytesRead !== rb.bytesRead || !bufA.subarray(0, ra.bytesRead).equals(bufB.subarray(0, rb.bytesRead))) return false;
      if (ra.bytesRead === 0) return true;
      at += ra.bytesRead;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * The moment of `ferry restore --as-of`: a time in UTC as `ferry versions` prints it
 * (`2026-12-07 18:13:48`, or shorter: `2026-12-07 18:13`, `2026-12-07`), an ISO time with
 * its offset, or how long ago (`90m`, `2h`, `3d`, `1w`). INVALID_CONFIG otherwise, and for a
 * moment still to come.
 */
export function parseAsOf(text: string, nowMs = Date.now()): number {
  const bad = (why: string) =>
    new FerryError('INVALID_CONFIG', `--as-of ${JSON.stringify(text)}: ${why}; give a time in UTC such as 2026-12-07 18:13:48 (or 2026-12-07), or how long ago, such as 2h or 3d`);
  const trimmed = text.trim();
  const ago = /^(\d+)\s*([smhdw])$/.exec(trimmed);
  if (ago) return nowMs - Number(ago[1]) * UNIT_MS[ago[2]!]!;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?$/i.exec(trimmed);
  if (!m) throw bad('not a time');
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const offset = /^(Z|UTC)$/i.test(zone) ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}${frac}${offset}`;
  const ms = Date.parse(iso);
  // Date.parse rolls 2026-02-30 over to March: a time that does not read back the same is no real time.
  if (Number.isNaN(ms) || new Date(ms + (offset === 'Z' ? 0 : offsetMs(offset))).toISOString().slice(0, 19) !== `${y}-${mo}-${d}T${h}:${mi}:${s}`) throw bad('no such time');
  if (ms > nowMs) throw bad('that is still to come');
  return ms;
}

function offsetMs(offset: string): number {
  const sign = offset.startsWith('-') ? -1 : 1;
  return sign * (Number(offset.slice(1, 3)) * 3_600_000 + Number(offset.slice(4, 6)) * 60_000);
}
