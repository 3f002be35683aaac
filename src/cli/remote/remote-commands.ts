/**
 * The CLI against a remote node's REST API: login/logout, ls, get, put, hash, verify, find,
 * log, rm, mkdir, mv, and the local block cache (cache stats|limit|clear).
 * Remote paths are `FOLDER_ID/path/inside`. The token and the node's pinned identity live in
 * the CLI's home (see credentials.ts). Errors print like every ferry command's: a message on
 * stderr, or `{"error":{"code","message"}}` with --json, and a non-zero exit code.
 */
import type { Command } from 'commander';
import { readdir, stat } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { parseDeviceId } from '../../core/device-id.js';
import { parseTime } from '../../api/time-filter.js';
import { resolveHome } from '../../daemon/home.js';
import { formatBytes } from '../../core/format-bytes.js';
import { failWith, printJson, printLine } from '../output.js';
import { apiPath, clientFor, RemoteClient } from './client.js';
import { Credentials, normalizeUrl } from './credentials.js';
import { readPassword, readStdinSecret } from './password-input.js';
import { BlockCache } from './block-cache.js';
import { readCacheLimit, saveCacheLimit } from './cache-limit.js';
import { parseRate, parseSize } from '../parse-size.js';
import { Progress } from './progress.js';
import { RemoteError } from './remote-error.js';
import { download, listRemote, sha256OfFile, splitRemote, upload, type RemoteEntry } from './transfer.js';

interface Ctx {
  readonly home: string;
  readonly json: boolean;
  readonly credentials: Credentials;
  /** A client for the node logged in to (or `--remote`). */
  client(): RemoteClient;
}

function run<A extends unknown[]>(body: (ctx: Ctx, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const opts = cmd.optsWithGlobals() as { home?: string; json?: boolean; remote?: string };
    const json = !!opts.json;
    try {
      const home = resolveHome(opts.home);
      const credentials = new Credentials(home);
      const ctx: Ctx = {
        home,
        json,
        credentials,
        client: () => clientFor(credentials, opts.remote),
      };
      await body(ctx, ...(args.slice(0, -1) as A));
    } catch (err) {
      failWith(err, json);
    }
  };
}

/** Compares every regular file under a local directory with the remote tree (paths relative to both roots). */
async function verifyTree(client: RemoteClient, abs: string, folder: string, path: string) {
  const listing = await listRemote(client, folder, path, { recursive: true, sha256: true });
  if (listing.type !== 'dir') throw new RemoteError('CONFLICT', `${folder}/${path} is not a directory, ${abs} is`);
  const remote = new Map<string, RemoteEntry>();
  for (const e of listing.entries) if (e.type === 'file') remote.set(path === '' ? e.path : e.path.slice(path.length + 1), e);
  const localFiles: string[] = [];
  const walk = async (dir: string, rel: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.ferry')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(dir, e.name), r);
      else if (e.isFile()) localFiles.push(r);
    }
  };
  await walk(abs, '');
  const differ: string[] = [];
  const missingRemotely: string[] = [];
  let same = 0;
  for (const rel of localFiles.sort()) {
    const r = remote.get(rel);
    remote.delete(rel);
    if (!r) missingRemotely.push(rel);
    else if ((await sha256OfFile(join(abs, ...rel.split('/')))) === r.sha256) same++;
    else differ.push(rel);
  }
  return { same, differ, missingRemotely, missingLocally: [...remote.keys()].sort() };
}

/** A time option: parsed here (so durations count from this machine's now), sent as ISO. */
function timeOption(text: string | undefined, name: string): string | undefined {
  return text === undefined ? undefined : new Date(parseTime(text, name)).toISOString();
}

export function registerRemoteCommands(program: Command): void {
  const withRemote = (cmd: Command) => cmd.option('--remote <url>', 'the node to use (default: the one logged in to last)');

  program
    .command('login <url>')
    .description('log in to a remote node (https://HOST:PORT) and remember the token; pins the node identity on first use')
    .option('--user <name>', 'user name (default: your login name)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--token-stdin', 'read an API token (from `ferry token create`) from standard input instead of a password')
    .option('--device-id <id>', "require the node to have this device ID (instead of trusting it on first use)")
    .action(
      run(async (ctx, url: string, opts: { user?: string; passwordStdin?: boolean; tokenStdin?: boolean; deviceId?: string }) => {
        const u = normalizeUrl(url);
        let pinnedNow: string | undefined;
        const expect = opts.deviceId ? parseDeviceId(opts.deviceId) : undefined;
        const base = { url: u.url, credentials: ctx.credentials, trustOnFirstUse: true, onPinned: (id: string) => (pinnedNow = id), ...(expect ? { expectDeviceId: expect } : {}) };
        let token: string;
        let user: string;
        if (opts.tokenStdin) {
          token = await readStdinSecret();
          const me = await new RemoteClient({ ...base, token }).json<{ user: string }>('GET', 'me');
          user = me.user;
        } else {
          user = opts.user ?? userInfo().username;
          const password = await readPassword({ stdin: !!opts.passwordStdin, prompt: `Password for ${user} at ${u.url}: ` });
          const client = new RemoteClient(base);
          const r = await client.json<{ token: string; user: string }>('POST', 'login', { json: { user, password, label: `cli@${hostname()}` } });
          token = r.token;
          user = r.user;
        }
        const deviceId = ctx.credentials.pinned(u.hostPort)!;
        ctx.credentials.save({ url: u.url, user, token, deviceId, loggedInAt: new Date().toISOString() });
        if (ctx.json) printJson({ url: u.url, user, deviceId, pinned: !!pinnedNow });
        else {
          if (pinnedNow) process.stderr.write(`Pinned the identity of ${u.hostPort}: device ID ${pinnedNow}\n`);
          printLine(`Logged in to ${u.url} as ${user}.`);
        }
      }),
    );

  program
    .command('logout [url]')
    .description('forget the token for a node (and revoke it there)')
    .option('--forget-node', "also forget the node's pinned identity")
    .action(
      run(async (ctx, url: string | undefined, opts: { forgetNode?: boolean }) => {
        const login = ctx.credentials.current(url);
        try {
          const client = new RemoteClient({ url: login.url, credentials: ctx.credentials, token: login.token });
          await client.json('POST', 'logout');
        } catch {
          // Best effort: the token is forgotten here either way.
        }
        ctx.credentials.remove(login.url);
        if (opts.forgetNode) ctx.credentials.unpin(normalizeUrl(login.url).hostPort);
        if (ctx.json) printJson({ loggedOut: login.url, forgotNode: !!opts.forgetNode });
        else printLine(`Logged out of ${login.url}.`);
      }),
    );

  withRemote(
    program
      .command('ls [path]')
      .description('list the folders you may use, or the files of FOLDER/path')
      .option('-l, --long', 'type, size, modification time and hash')
      .option('-r, --recursive', 'everything below, not only direct children')
      .option('--since <time>', 'modified at or after (ISO date/time, or a duration ago: 2h, 7d)')
      .option('--until <time>', 'modified before (same forms)')
      .option('--type <ext|glob>', 'only files with this extension (pdf) or whose name matches the glob (*.jp*g)'),
  ).action(
    run(async (ctx, path: string | undefined, opts: { long?: boolean; recursive?: boolean; since?: string; until?: string; type?: string }) => {
      const client = ctx.client();
      if (!path) {
        const r = await client.json<{ folders: { id: string; access: string; files: number; bytes: number }[] }>('GET', 'folders');
        if (ctx.json) return printJson(r.folders);
        for (const f of r.folders) printLine(opts.long ? `${f.id}\t${f.access}\t${f.files} files\t${formatBytes(f.bytes)}` : f.id);
        return;
      }
      const { folder, path: inner } = splitRemote(path);
      const l = await listRemote(client, folder, inner, {
        recursive: !!opts.recursive,
        since: timeOption(opts.since, '--since'),
        until: timeOption(opts.until, '--until'),
        type: opts.type,
      });
      if (ctx.json) return printJson(l.entries);
      for (const e of l.entries) {
        const rel = l.type === 'dir' && inner !== '' ? e.path.slice(inner.length + 1) : e.path;
        const name = e.type === 'dir' ? `${rel}/` : rel;
        if (!opts.long) printLine(name);
        else printLine(`${e.type.padEnd(7)} ${String(e.size).padStart(12)}  ${new Date(e.mtimeMs).toISOString()}  ${(e.sha256 ?? (e as { contentHash?: string }).contentHash ?? '-').slice(0, 16).padEnd(16)}  ${name}`);
      }
    }),
  );

  withRemote(
    program
      .command('get <remote...>')
      .description('download files or directories (FOLDER/path ... LOCAL_DIR); fetches only blocks not in the local cache, resumes, checks SHA-256')
      .option('--limit-rate <bytes>', 'at most this many bytes per second (500K, 2M)')
      .option('--no-cache', 'do not use the local block cache (whole files, resumed byte-wise)')
      .option('--cache-limit <bytes>', 'size limit of the local block cache for this run (default: the one set with `ferry cache limit`, else 1G)'),
  ).action(
    run(async (ctx, args: string[], opts: { limitRate?: string; cache: boolean; cacheLimit?: string }) => {
      if (args.length < 2) throw new RemoteError('INVALID_REQUEST', 'usage: ferry get FOLDER/path... LOCAL_DIR');
      const dir = resolve(args[args.length - 1]!);
      const st = await stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) throw new RemoteError('INVALID_PATH', `${dir} is not an existing directory`);
      const client = ctx.client();
      const progress = Progress.forTerminal(ctx.json, 0);
      const limitRate = opts.limitRate ? parseRate(opts.limitRate, '--limit-rate') : undefined;
      const cache = opts.cache ? new BlockCache(ctx.home, opts.cacheLimit ? parseSize(opts.cacheLimit, '--cache-limit') : readCacheLimit(ctx.home).bytes) : undefined;
      const results = [];
      try {
        for (const r of args.slice(0, -1)) {
          const { folder, path } = splitRemote(r);
          results.push(...(await download(client, folder, path, dir, { progress, ...(limitRate ? { limitRate } : {}), ...(cache ? { cache } : {}) })));
        }
      } finally {
        progress.finish();
      }
      const transferred = results.reduce((a, r) => a + r.transferred, 0);
      const cachedBytes = results.reduce((a, r) => a + r.cachedBytes, 0);
      if (ctx.json) printJson({ files: results, transferred, cachedBytes });
      else {
        const notes = [results.some((r) => r.resumedFrom > 0) ? 'resumed' : '', cachedBytes > 0 ? `${formatBytes(cachedBytes)} from the local cache` : ''].filter(Boolean);
        printLine(`${results.length} file(s), ${formatBytes(transferred)} transferred${notes.length ? ` (${notes.join(', ')})` : ''}, SHA-256 verified.`);
      }
    }),
  );

  const cacheCmd = program.command('cache').description("the local block cache that makes repeated downloads fetch only what changed");
  cacheCmd
    .command('stats')
    .description('blocks and bytes in the cache, and its size limit')
    .action(
      run(async (ctx) => {
        const limit = readCacheLimit(ctx.home);
        const s = new BlockCache(ctx.home, limit.bytes).stats();
        if (ctx.json) printJson({ ...s, limitSource: limit.source });
        else printLine(`${s.blocks} block(s), ${formatBytes(s.bytes)} in ${s.dir} (limit ${formatBytes(s.limit)}${limit.source === 'default' ? ', the default' : ''})`);
      }),
    );
  cacheCmd
    .command('limit [size]')
    .description('show, or set and remember, the size limit of the cache (500M, 2G; 0 keeps nothing); a lower limit evicts at once')
    .action(
      run(async (ctx, size: string | undefined) => {
        if (size !== undefined) {
          const bytes = parseSize(size, 'the cache limit');
          saveCacheLimit(ctx.home, bytes);
          new BlockCache(ctx.home, bytes).trim();
        }
        const limit = readCacheLimit(ctx.home);
        const s = new BlockCache(ctx.home, limit.bytes).stats();
        if (ctx.json) printJson({ limit: limit.bytes, limitSource: limit.source, blocks: s.blocks, bytes: s.bytes });
        else printLine(`Cache limit ${formatBytes(limit.bytes)}${limit.source === 'default' ? ' (the default)' : ''}; ${formatBytes(s.bytes)} in the cache.`);
      }),
    );
  cacheCmd
    .command('clear')
    .description('empty the cache')
    .action(
      run(async (ctx) => {
        const cache = new BlockCache(ctx.home);
        const before = cache.stats();
        cache.clear();
        if (ctx.json) printJson({ cleared: before.blocks, bytes: before.bytes });
        else printLine(`Removed ${before.blocks} block(s), ${formatBytes(before.bytes)}.`);
      }),
    );

  withRemote(
    program
      .command('put <local...>')
      .description('upload files or directories (LOCAL... FOLDER/dir); skips files the node already has')
      .option('--limit-rate <bytes>', 'at most this many bytes per second (500K, 2M)')
      .option('--sha256 <hex>', 'the SHA-256 the file must have: the node refuses the upload if the bytes differ (one file)'),
  ).action(
    run(async (ctx, args: string[], opts: { limitRate?: string; sha256?: string }) => {
      if (args.length < 2) throw new RemoteError('INVALID_REQUEST', 'usage: ferry put LOCAL... FOLDER/dir');
      const { folder, path: dir } = splitRemote(args[args.length - 1]!);
      const locals = args.slice(0, -1).map((p) => resolve(p));
      for (const l of locals) await stat(l).catch(() => {
        throw new RemoteError('NOT_FOUND', `${l} does not exist`);
      });
      if (opts.sha256 !== undefined && (!/^[0-9a-fA-F]{64}$/.test(opts.sha256) || locals.length !== 1)) {
        throw new RemoteError('INVALID_REQUEST', '--sha256 takes 64 hexadecimal digits and applies to a single file');
      }
      const client = ctx.client();
      const progress = Progress.forTerminal(ctx.json, 0);
      const limitRate = opts.limitRate ? parseRate(opts.limitRate, '--limit-rate') : undefined;
      const results = [];
      try {
        for (const l of locals) {
          results.push(...(await upload(client, l, folder, dir, { progress, ...(limitRate ? { limitRate } : {}), ...(opts.sha256 ? { claimSha256: opts.sha256.toLowerCase() } : {}) })));
        }
      } finally {
        progress.finish();
      }
      const transferred = results.reduce((a, r) => a + r.transferred, 0);
      if (ctx.json) printJson({ files: results, transferred });
      else {
        const skipped = results.filter((r) => r.skipped).length;
        printLine(`${results.length - skipped} file(s) uploaded, ${skipped} already there, ${formatBytes(transferred)} sent.`);
      }
    }),
  );

  withRemote(
    program
      .command('hash [remote]')
      .description('SHA-256, size and modification time of a remote file (--all: of every file under a path)')
      .option('--all', 'every file under the path (recursively)'),
  ).action(
    run(async (ctx, remote: string | undefined, opts: { all?: boolean }) => {
      const client = ctx.client();
      if (!remote) throw new RemoteError('INVALID_REQUEST', 'usage: ferry hash FOLDER/path (or --all FOLDER[/dir])');
      const { folder, path } = splitRemote(remote);
      let rows: { path: string; sha256?: string; size: number; mtimeMs: number }[];
      if (opts.all) {
        const l = await listRemote(client, folder, path, { recursive: true, sha256: true });
        rows = l.entries.filter((e: RemoteEntry) => e.type === 'file').map((e) => ({ path: `${folder}/${e.path}`, sha256: e.sha256, size: e.size, mtimeMs: e.mtimeMs }));
      } else {
        const h = await client.json<{ sha256: string; size: number; mtimeMs: number }>('GET', apiPath('hash', folder, path));
        rows = [{ path: `${folder}/${path}`, sha256: h.sha256, size: h.size, mtimeMs: h.mtimeMs }];
      }
      if (ctx.json) return printJson(opts.all ? rows : rows[0]);
      for (const r of rows) printLine(`${r.sha256 ?? '?'.repeat(64)}  ${r.size}  ${new Date(r.mtimeMs).toISOString()}  ${r.path}`);
    }),
  );

  withRemote(
    program.command('verify <local> <remote>').description('check that a local file (or directory tree) has the same bytes as the remote one; exit 1 if not'),
  ).action(
    run(async (ctx, local: string, remote: string) => {
      const client = ctx.client();
      const { folder, path } = splitRemote(remote);
      const abs = resolve(local);
      const st = await stat(abs).catch(() => undefined);
      if (!st?.isFile() && !st?.isDirectory()) throw new RemoteError('NOT_FOUND', `${abs} does not exist`);
      if (st.isDirectory()) {
        const report = await verifyTree(client, abs, folder, path);
        const match = report.differ.length + report.missingLocally.length + report.missingRemotely.length === 0;
        if (ctx.json) printJson({ match, ...report });
        else {
          for (const p of report.differ) printLine(`MISMATCH: ${p}`);
          for (const p of report.missingLocally) printLine(`ONLY ON NODE: ${p}`);
          for (const p of report.missingRemotely) printLine(`ONLY HERE: ${p}`);
          printLine(match ? `OK: ${report.same} file(s) in ${abs} match ${folder}/${path}` : `${report.differ.length} differ, ${report.missingLocally.length} only on the node, ${report.missingRemotely.length} only here, ${report.same} match`);
        }
        if (!match) process.exit(1);
        return;
      }
      const [localSha, remoteHash] = await Promise.all([
        sha256OfFile(abs),
        client.json<{ sha256: string; size: number }>('GET', apiPath('hash', folder, path)),
      ]);
      const match = localSha === remoteHash.sha256;
      if (ctx.json) printJson({ match, local: { path: abs, size: st.size, sha256: localSha }, remote: { path: `${folder}/${path}`, ...remoteHash } });
      else printLine(match ? `OK: ${abs} matches ${folder}/${path} (SHA-256 ${localSha})` : `MISMATCH: ${abs} (SHA-256 ${localSha}, ${st.size} bytes) differs from ${folder}/${path} (SHA-256 ${remoteHash.sha256}, ${remoteHash.size} bytes)`);
      if (!match) process.exit(1);
    }),
  );

  withRemote(
    program
      .command('log')
      .description('the audit log: who uploaded, downloaded, deleted or logged in, from where, when')
      .option('--since <time>', 'entries at or after (ISO date/time, or a duration ago: 2h, 7d)')
      .option('--until <time>', 'entries before (same forms)')
      .option('--user <name>', "only this user's entries")
      .option('--path <FOLDER/path>', 'only entries for this folder or path (and below)')
      .option('--limit <n>', 'at most this many (the newest)', '1000'),
  ).action(
    run(async (ctx, opts: { since?: string; until?: string; user?: string; path?: string; limit: string }) => {
      const client = ctx.client();
      const r = await client.json<{ entries: { at: string; user: string; action: string; folder?: string; path?: string; address: string; ok: boolean; error?: string }[] }>('GET', 'audit', {
        query: { since: timeOption(opts.since, '--since'), until: timeOption(opts.until, '--until'), user: opts.user, path: opts.path, limit: opts.limit },
      });
      if (ctx.json) return printJson(r.entries);
      for (const e of r.entries) {
        const where = e.folder ? `${e.folder}${e.path ? '/' + e.path : ''}` : '-';
        printLine(`${e.at}  ${e.user || '-'}  ${e.action}${e.ok ? '' : ` REFUSED(${e.error ?? ''})`}  ${where}  from ${e.address}`);
      }
    }),
  );

  withRemote(
    program
      .command('find <text>')
      .description('files whose name or text contains TEXT (case-insensitive, 3+ characters), with the matching lines')
      .option('--in <FOLDER/path>', 'only under this folder or directory')
      .option('--type <ext|glob>', 'only files with this extension (md) or whose name matches the glob (*.txt)')
      .option('--limit <n>', 'at most this many files', '200'),
  ).action(
    run(async (ctx, text: string, opts: { in?: string; type?: string; limit: string }) => {
      const client = ctx.client();
      const r = await client.json<{ hits: { folder: string; path: string; type: string; nameMatch: boolean; lines: { line: number; text: string }[] }[] }>('GET', 'search', {
        query: { q: text, in: opts.in?.replace(/\/+$/, ''), type: opts.type, limit: opts.limit },
      });
      if (ctx.json) return printJson(r.hits);
      for (const h of r.hits) {
        if (h.lines.length === 0 || h.nameMatch) printLine(`${h.folder}/${h.path}${h.type === 'dir' ? '/' : ''}`);
        for (const l of h.lines) printLine(`${h.folder}/${h.path}:${l.line}: ${l.text}`);
      }
    }),
  );

  withRemote(program.command('mkdir <remote...>').description('create remote directories (and their parents)')).action(
    run(async (ctx, remotes: string[]) => {
      const client = ctx.client();
      const out = [];
      for (const r of remotes) {
        const { folder, path } = splitRemote(r);
        out.push(await client.json<{ folder: string; path: string; created: boolean }>('POST', apiPath('mkdir', folder, path)));
      }
      if (ctx.json) printJson(out);
      else for (const d of out) printLine(d.created ? `Created ${d.folder}/${d.path}/` : `${d.folder}/${d.path}/ already exists.`);
    }),
  );

  withRemote(
    program
      .command('mv <source> <destination>')
      .description('move or rename a remote file or directory within its folder (a destination ending in / is a directory to move into)'),
  ).action(
    run(async (ctx, source: string, destination: string) => {
      const client = ctx.client();
      const from = splitRemote(source);
      const to = splitRemote(destination);
      let toPath = to.path;
      if (destination.endsWith('/') || toPath === '') {
        const name = from.path.slice(from.path.lastIndexOf('/') + 1);
        toPath = toPath === '' ? name : `${toPath}/${name}`;
      }
      const r = await client.json<{ folder: string; path: string; to: string }>('POST', apiPath('move', from.folder, from.path), { json: { to: `${to.folder}/${toPath}` } });
      if (ctx.json) printJson(r);
      else printLine(`Moved ${r.folder}/${r.path} to ${r.folder}/${r.to}.`);
    }),
  );

  withRemote(
    program
      .command('rm <remote...>')
      .description('delete remote files or directories (they go to the node\'s version area)')
      .option('-r, --recursive', 'delete directories with everything in them'),
  ).action(
    run(async (ctx, remotes: string[], opts: { recursive?: boolean }) => {
      const client = ctx.client();
      const out = [];
      for (const r of remotes) {
        const { folder, path } = splitRemote(r);
        if (path === '') throw new RemoteError('INVALID_PATH', `${r}: cannot delete a whole folder remotely`);
        out.push(await client.json<{ folder: string; path: string; files: number }>('DELETE', apiPath('content', folder, path), { query: { recursive: !!opts.recursive } }));
      }
      if (ctx.json) printJson(out);
      else for (const d of out) printLine(`Deleted ${d.folder}/${d.path}${d.files > 1 ? ` (${d.files} files)` : ''}.`);
    }),
  );
}
