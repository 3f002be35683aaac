/**
 * The version area from the command line, on the node's own machine (no running node needed):
 * `ferry versions FOLDER [PATH]` lists what replaced and deleted files are kept;
 * `ferry restore FOLDER PATH [--at TIME]` puts one back, as a new edit that syncs everywhere;
 * `ferry restore FOLDER [PATH] --as-of TIME [--dry-run]` rewinds a directory or the folder.
 * With `--remote URL` both ask a node logged in to (`ferry login`) over its REST API instead.
 */
import type { Command } from 'commander';
import { FerryError } from '../core/errors.js';
import { formatBytes } from '../core/format-bytes.js';
import { parseAsOf, rewind, type RewindResult } from '../engine/rewind.js';
import { restorePath, Versioner } from '../engine/versioner.js';
import type { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { printJson, printLine } from './output.js';
import { apiPath, clientFor } from './remote/client.js';
import { Credentials } from './remote/credentials.js';

type Action = <A extends unknown[]>(body: (home: string, json: boolean, ...args: A) => Promise<void> | void) => (...args: unknown[]) => Promise<void>;

export function registerVersionCommands(program: Command, action: Action, withStore: <T>(home: string, fn: (store: SqliteIndexStore) => T) => Promise<T>): void {
  const versionsOf = (home: string, folderId: string) =>
    withStore(home, (store) => {
      const folder = store.listFolders().find((f) => f.id === folderId);
      if (!folder) throw new FerryError('UNKNOWN_FOLDER', `no folder ${JSON.stringify(folderId)} here (see \`ferry folder list\`)`);
      return new Versioner(folder.path, folder.versionsKeepDays);
    });

  program
    .command('versions <folder> [path]')
    .description('list the replaced and deleted files kept in a folder\'s version area (of PATH: a file, or everything under a directory), newest first')
    .option('--remote <url>', REMOTE_HELP)
    .action(
      action(async (home, json, folderId: string, path: string | undefined, opts: { remote?: string }) => {
        const versions = opts.remote
          ? (await clientFor(new Credentials(home), opts.remote).json<{ versions: ListedVersion[] }>('GET', apiPath('versions', folderId, path ?? ''))).versions
          : (await versionsOf(home, folderId)).list(path ?? '').map((v) => ({ ...v, replacedAt: new Date(v.replacedAtMs).toISOString() }));
        if (json) return printJson(versions);
        if (versions.length === 0) return printLine(path ? `no versions of ${path} in ${folderId}` : `no versions in ${folderId}`);
        for (const v of versions) printLine(`${formatTime(Date.parse(v.replacedAt))}  ${formatBytes(v.size).padStart(10)}  ${v.path}`);
      }),
    );

  program
    .command('restore <folder> [path]')
    .description('put a file back as it was before it was replaced or deleted (the newest version, or the one of --at); what is there now is kept as a version. A directory: every file under it that is missing now. With --as-of: PATH (or the whole folder) as it was at that time')
    .option('--at <time>', 'the version replaced at this time (UTC, as `ferry versions` prints it; a prefix such as 2026-12-07 takes the newest of that day)')
    .option('--as-of <time>', 'rewind PATH, or the whole folder when no PATH is given, to how it was at this time: UTC as `ferry versions` prints it (2026-12-07 18:13:48, or 2026-12-07), or how long ago (90m, 2h, 3d)')
    .option('--dry-run', 'with --as-of: list what would be put back, change nothing')
    .option('--remote <url>', REMOTE_HELP)
    .action(
      action(async (home, json, folderId: string, path: string | undefined, opts: { at?: string; asOf?: string; dryRun?: boolean; remote?: string }) => {
        if (opts.asOf !== undefined) {
          if (opts.at !== undefined) throw new FerryError('INVALID_CONFIG', '--at picks one version of a file, --as-of rewinds to a time: give one of them');
          const asOf = new Date(parseAsOf(opts.asOf)).toISOString();
          const result: RewindResult = opts.remote
            ? await clientFor(new Credentials(home), opts.remote).json('POST', apiPath('restore', folderId, path ?? ''), { query: { asOf, ...(opts.dryRun ? { dryRun: 'true' } : {}) } })
            : await rewind(await versionsOf(home, folderId), path ?? '', Date.parse(asOf), { dryRun: opts.dryRun });
          return json ? printJson(result) : printRewind(result, path);
        }
        if (opts.dryRun) throw new FerryError('INVALID_CONFIG', '--dry-run goes with --as-of');
        if (path === undefined) throw new FerryError('INVALID_CONFIG', 'give the PATH to restore (or --as-of TIME to rewind the whole folder)');
        const result: { restored: { path: string; replacedAt: string; kept?: string | null }[]; skipped: string[] } = opts.remote
          ? await clientFor(new Credentials(home), opts.remote).json('POST', apiPath('restore', folderId, path), { query: opts.at === undefined ? {} : { at: opts.at } })
          : await restorePath(await versionsOf(home, folderId), path, opts.at);
        if (json) return printJson(result);
        for (const r of result.restored) {
          printLine(`Restored ${r.path} as it was until ${formatTime(Date.parse(r.replacedAt))}${r.kept ? `; what was there is kept as ${r.kept}` : ''}`);
        }
        if (result.skipped.length) printLine(`Left ${result.skipped.length} file(s) that are there now as they are (restore them one by one)`);
      }),
    );
}

/** How many changed files `ferry restore --as-of` names before it only counts them (--json lists all). */
const LISTED_CHANGED = 20;

function printRewind(result: RewindResult, path: string | undefined): void {
  const where = path ?? 'the folder';
  const when = formatTime(Date.parse(result.asOf));
  const verb = result.dryRun ? 'Would restore' : 'Restored';
  for (const r of result.restored) printLine(`${verb} ${r.path} (the version replaced at ${formatTime(Date.parse(r.replacedAt))})${r.kept ? `; what was there is kept as ${r.kept}` : ''}`);
  if (result.restored.length === 0 && result.failed.length === 0) printLine(`Nothing in ${where} to put back as of ${when}`);
  for (const f of result.failed) printLine(`Could not restore ${f.path}: ${f.message}`);
  if (result.unchanged) printLine(`${result.unchanged} file(s) are as they were then`);
  if (result.changedSince.length === 0) return;
  printLine(`Left as they are: ${result.changedSince.length} file(s) changed or created since ${when} with no earlier version on this device (another device may keep one):`);
  for (const p of result.changedSince.slice(0, LISTED_CHANGED)) printLine(`  ${p}`);
  if (result.changedSince.length > LISTED_CHANGED) printLine(`  … and ${result.changedSince.length - LISTED_CHANGED} more (--json lists them all)`);
}

const REMOTE_HELP = 'ask this node over its REST API (one you logged in to with `ferry login`) instead of this machine';

interface ListedVersion {
  readonly path: string;
  readonly replacedAt: string;
  readonly size: number;
}

/** `2026-12-07 18:13:48 UTC`: the version area's stamps are UTC. */
function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
