/**
 * Read-only routes over the index: GET /folders (the folders the user may see), GET
 * /files/{folder}/{path} (a listing with size, mtime, type and content hash, filtered by
 * time and type) and GET /hash/{folder}/{path} (the whole-file SHA-256 of one file).
 * Listings come from the index, so they show what the node has scanned: a file written
 * behind the node's back appears once the watcher or a rescan has seen it.
 */
import { open, lstat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { blockOffsets, contentHash } from '../core/file-record.js';
import { FolderPaths } from '../engine/folder-paths.js';
import type { LocalEntry } from '../index-store/sqlite-index-store.js';
import { isInternalPath } from '../core/paths.js';
import { ApiError } from './api-error.js';
import { cachedSha256, etagFor } from './file-sha256.js';
import { sendJson } from './http-io.js';
import { matchesFilter, typeMatcher, type ListFilter, type ListedEntry } from './listing.js';
import { decodeUrlPath, parseRemotePath } from './remote-path.js';
import { accessTo, flag, requireFolder, type ApiServices, type Route } from './request-context.js';
import { parseTime } from './time-filter.js';

export interface FileInfo {
  readonly path: string;
  readonly name: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly size: number;
  readonly mtime: string;
  readonly mtimeMs: number;
  readonly mode: number;
  /** The index's content hash: SHA-256 over the file's block hashes (files only). */
  readonly contentHash?: string;
  /** Whole-file SHA-256, when known (always with ?sha256=1). */
  readonly sha256?: string;
  readonly symlinkTarget?: string;
}

export const fileRoutes: Route[] = [
  {
    method: 'GET',
    path: 'folders',
    handler: async (ctx, services) => {
      const user = ctx.user!;
      const folders = services.index
        .listFolders()
        .filter((f) => accessTo(user, f.id))
        .map((f) => {
          const counts = services.index.localCounts(f.id);
          return { id: f.id, access: accessTo(user, f.id)!, files: counts.files, bytes: counts.bytes };
        });
      sendJson(ctx.res, 200, { folders });
    },
  },
  {
    method: 'GET',
    path: 'files/',
    handler: async (ctx, services, rest) => {
      const { folder, path } = parseRemotePath(decodeUrlPath(rest), { allowRoot: true });
      const cfg = requireFolder(ctx, services, folder, 'ro', 'list', path);
      const q = ctx.url.searchParams;
      const filter: ListFilter = {
        recursive: flag(ctx.url, 'recursive'),
        ...(q.get('since') !== null ? { sinceMs: parseTime(q.get('since')!, 'since') } : {}),
        ...(q.get('until') !== null ? { untilMs: parseTime(q.get('until')!, 'until') } : {}),
        ...(q.get('type') !== null ? { type: q.get('type')! } : {}),
      };
      const matchType = filter.type !== undefined ? typeMatcher(filter.type) : undefined;
      const withSha = flag(ctx.url, 'sha256');
      let entries: LocalEntry[];
      if (path !== '') {
        const self = services.index.getLocal(folder, path);
        if (!self || self.record.deleted) throw new ApiError('NOT_FOUND', `${folder}/${path} does not exist`);
        if (self.record.type !== 'dir') {
          const info = await fileInfo(services, cfg.path, folder, self, withSha);
          sendJson(ctx.res, 200, { folder, path, type: self.record.type, entries: [info] });
          return;
        }
        entries = services.index.localUnder(folder, path);
      } else {
        entries = [...services.index.allLocal(folder).values()];
      }
      const out: FileInfo[] = [];
      for (const e of entries) {
        const r = e.record;
        if (r.deleted || isInternalPath(r.path)) continue;
        const listed: ListedEntry = { path: r.path, name: r.path.slice(r.path.lastIndexOf('/') + 1), type: r.type, size: r.size, mtimeMs: r.mtimeMs };
        if (!matchesFilter(listed, path, filter, matchType)) continue;
        out.push(await fileInfo(services, cfg.path, folder, e, withSha));
      }
      out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      sendJson(ctx.res, 200, { folder, path, type: 'dir', entries: out });
    },
  },
  {
    method: 'GET',
    path: 'hash/',
    handler: async (ctx, services, rest) => {
      const { folder, path } = parseRemotePath(decodeUrlPath(rest));
      const cfg = requireFolder(ctx, services, folder, 'ro', 'hash', path);
      const abs = new FolderPaths(cfg.path).resolve(path);
      const st = await lstat(abs);
      if (!st.isFile()) throw new ApiError('CONFLICT', `${folder}/${path} is not a regular file`);
      const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const fst = await fh.stat();
        const sha256 = await cachedSha256(services.access, folder, path, fh, fst);
        sendJson(ctx.res, 200, { folder, path, size: fst.size, mtime: fst.mtime.toISOString(), mtimeMs: fst.mtimeMs, sha256 });
      } finally {
        await fh.close();
      }
    },
  },
  {
    // The file's blocks as the index knows them, so a client with a block cache fetches only
    // the blocks it lacks (with Range requests). Refused when the file on disk is not the
    // version the index describes: then the client downloads it whole.
    method: 'GET',
    path: 'blocks/',
    handler: async (ctx, services, rest) => {
      const { folder, path } = parseRemotePath(decodeUrlPath(rest));
      const cfg = requireFolder(ctx, services, folder, 'ro', 'download', path);
      const entry = services.index.getLocal(folder, path);
      if (!entry || entry.record.deleted) throw new ApiError('NOT_FOUND', `${folder}/${path} does not exist`);
      if (entry.record.type !== 'file') throw new ApiError('CONFLICT', `${folder}/${path} is not a regular file`);
      const fh = await open(new FolderPaths(cfg.path).resolve(path), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const st = await fh.stat();
        const known = entry.stat;
        if (!known || known.size !== st.size || known.mtimeMs !== st.mtimeMs || known.ino !== st.ino || entry.record.size !== st.size) {
          throw new ApiError('CONFLICT', `${folder}/${path} changed since it was indexed: download it whole`);
        }
        const sha256 = await cachedSha256(services.access, folder, path, fh, st);
        const offsets = blockOffsets(entry.record.blocks);
        sendJson(ctx.res, 200, {
          folder,
          path,
          size: st.size,
          mtimeMs: st.mtimeMs,
          sha256,
          etag: etagFor(sha256),
          chunkAvg: entry.chunkAvg,
          blocks: entry.record.blocks.map((b, i) => ({ offset: offsets[i], size: b.size, hash: b.hash.toString('hex') })),
        });
      } finally {
        await fh.close();
      }
    },
  },
];

async function fileInfo(services: ApiServices, root: string, folder: string, e: LocalEntry, withSha: boolean): Promise<FileInfo> {
  const r = e.record;
  const base = {
    path: r.path,
    name: r.path.slice(r.path.lastIndexOf('/') + 1),
    type: r.type,
    size: r.type === 'file' ? r.size : 0,
    mtime: new Date(r.mtimeMs).toISOString(),
    mtimeMs: r.mtimeMs,
    mode: r.mode,
    ...(r.symlinkTarget !== undefined ? { symlinkTarget: r.symlinkTarget } : {}),
  };
  if (r.type !== 'file') return base;
  let sha256 = e.stat ? services.access.cachedSha256(folder, r.path, { size: e.stat.size, mtimeMs: e.stat.mtimeMs, ino: e.stat.ino }) : undefined;
  if (!sha256 && withSha) sha256 = await shaOf(services, root, folder, r.path);
  return { ...base, contentHash: contentHash(r.blocks).toString('hex'), ...(sha256 ? { sha256 } : {}) };
}

async function shaOf(services: ApiServices, root: string, folder: string, path: string): Promise<string | undefined> {
  try {
    const fh = await open(new FolderPaths(root).resolve(path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return await cachedSha256(services.access, folder, path, fh, await fh.stat());
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

