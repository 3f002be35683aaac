/**
 * The version area from the command line, on the node's own machine (no running node needed):
 * `ferry versions FOLDER [PATH]` lists what replaced and deleted files are kept;
 * `ferry restore FOLDER PATH [--at TIME]` puts one back, as a new edit that syncs everywhere.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../core/errors.js';
import { formatBytes } from '../core/format-bytes.js';
import { Versioner, type StoredVersion } from '../engine/versioner.js';
import type { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { printJson, printLine } from './output.js';

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
    .action(
      action(async (home, json, folderId: string, path: string | undefined) => {
        const versions = (await versionsOf(home, folderId)).list(path ?? '');
        if (json) return printJson(versions.map((v) => ({ ...v, replacedAt: new Date(v.replacedAtMs).toISOString() })));
        if (versions.length === 0) return printLine(path ? `no versions of ${path} in ${folderId}` : `no versions in ${folderId}`);
        for (const v of versions) printLine(`${formatTime(v.replacedAtMs)}  ${formatBytes(v.size).padStart(10)}  ${v.path}`);
      }),
    );

  program
    .command('restore <folder> <path>')
    .description('put a file back as it was before it was replaced or deleted (the newest version, or the one of --at); what is there now is kept as a version. A directory: every file under it that is missing now')
    .option('--at <time>', 'the version replaced at this time (UTC, as `ferry versions` prints it; a prefix such as 2026-12-07 takes the newest of that day)')
    .action(
      action(async (home, json, folderId: string, path: string, opts: { at?: string }) => {
        if (opts.at !== undefined) timeDigits(opts.at);
        const versioner = await versionsOf(home, folderId);
        const all = versioner.list(path);
        const own = all.filter((v) => v.path === path);
        if (own.length > 0 || all.length === 0) {
          const chosen = pick(own, path, opts.at);
          const { kept } = versioner.restore(chosen);
          if (json) return printJson({ restored: [restoredJson(chosen, kept)], skipped: [] });
          return printLine(`Restored ${path} as it was until ${formatTime(chosen.replacedAtMs)}${kept ? `; what was there is kept as ${kept}` : ''}`);
        }
        // A directory: what was deleted under it comes back; files there now stay as they are.
        const restored: ReturnType<typeof restoredJson>[] = [];
        const skipped: string[] = [];
        for (const [file, versions] of groupByPath(all)) {
          if (existsSync(join(versioner.root, file))) {
            skipped.push(file);
            continue;
          }
          const chosen = opts.at === undefined ? versions[0] : versions.find((v) => matchesTime(v, opts.at!));
          if (chosen) restored.push(restoredJson(chosen, versioner.restore(chosen).kept));
        }
        if (restored.length === 0) throw new FerryError('NOT_FOUND', `nothing to restore under ${path}${opts.at ? ` replaced at ${opts.at} (UTC)` : ''}: ${skipped.length} file(s) with versions are there now`);
        if (json) return printJson({ restored, skipped });
        for (const r of restored) printLine(`Restored ${r.path} as it was until ${formatTime(Date.parse(r.replacedAt))}`);
        if (skipped.length) printLine(`Left ${skipped.length} file(s) that are there now as they are (restore them one by one)`);
      }),
    );
}

function restoredJson(v: StoredVersion, kept: string | undefined) {
  return { path: v.path, from: v.stored, replacedAt: new Date(v.replacedAtMs).toISOString(), kept: kept ?? null };
}

function groupByPath(versions: StoredVersion[]): Map<string, StoredVersion[]> {
  const out = new Map<string, StoredVersion[]>();
  for (const v of versions) out.set(v.path, [...(out.get(v.path) ?? []), v]);
  return out;
}

/** The newest version, or the newest whose time (as digits, UTC) starts with the digits of `at`. */
function pick(versions: StoredVersion[], path: string, at: string | undefined): StoredVersion {
  if (versions.length === 0) throw new FerryError('NOT_FOUND', `no versions of ${path} are kept (see \`ferry versions\`)`);
  if (at === undefined) return versions[0]!;
  const found = versions.find((v) => matchesTime(v, at));
  if (!found) throw new FerryError('NOT_FOUND', `no version of ${path} replaced at ${at} (UTC); kept: ${versions.map((v) => formatTime(v.replacedAtMs)).join(', ')}`);
  return found;
}

/** Whether `v` was replaced at `at`: its time (UTC, as digits) starts with the digits of `at`. */
function matchesTime(v: StoredVersion, at: string): boolean {
  return formatTime(v.replacedAtMs).replace(/\D/g, '').startsWith(timeDigits(at));
}

function timeDigits(at: string): string {
  const digits = at.replace(/\D/g, '');
  if (digits.length < 8 || digits.length > 14) {
    throw new FerryError('INVALID_CONFIG', `--at ${JSON.stringify(at)}: give a time as \`ferry versions\` prints it, e.g. 2026-12-07 18:13:48 or just 2026-12-07`);
  }
  return digits;
}

/** `2026-12-07 18:13:48 UTC`: the version area's stamps are UTC. */
function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
