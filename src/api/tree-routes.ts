/**
 * Changing the shape of a folder: POST /mkdir/{folder}/{path} (with parents, like mkdir -p)
 * and POST /move/{folder}/{path} `{"to": "FOLDER/new/path"}` (an atomic rename within one
 * folder; the destination must not exist). Both need read-write access, are audited, and are
 * handed to the engine like any local change (a move reaches peers as a delete plus a create
 * whose blocks they already have, so no data is sent again).
 */
import { lstat, mkdir, rename } from 'node:fs/promises';
import { FolderPaths } from '../engine/folder-paths.js';
import { ApiError } from './api-error.js';
import { readJsonBody, sendJson } from './http-io.js';
import { decodeUrlPath, parseRemotePath } from './remote-path.js';
import { audit, requireFolder, type Route } from './request-context.js';
import { tellEngine } from './upload.js';

export const treeRoutes: Route[] = [
  {
    method: 'POST',
    path: 'mkdir/',
    handler: async (ctx, services, rest) => {
      const { folder, path } = parseRemotePath(decodeUrlPath(rest));
      const cfg = requireFolder(ctx, services, folder, 'rw', 'mkdir', path);
      if (!services.options.folderSync(folder)) throw new ApiError('UNAVAILABLE', `folder ${folder} is not running on this node`);
      const paths = new FolderPaths(cfg.path);
      let abs: string;
      try {
        abs = paths.resolve(path, { createParents: true });
      } catch (err) {
        // A parent that is a file (or a symlink) is a conflict with what is there, not a bad path.
        if ((err as { code?: string }).code === 'INVALID_PATH') throw new ApiError('CONFLICT', (err as Error).message);
        throw err;
      }
      const st = await lstat(abs).catch(() => undefined);
      if (st && !st.isDirectory()) throw new ApiError('CONFLICT', `${folder}/${path} exists and is not a directory`);
      if (!st) await mkdir(abs);
      if (!st) audit(ctx, services, 'mkdir', folder, path);
      await tellEngine(services, folder, [path]);
      sendJson(ctx.res, st ? 200 : 201, { folder, path, created: !st });
    },
  },
  {
    method: 'POST',
    path: 'move/',
    handler: async (ctx, services, rest) => {
      const { folder, path } = parseRemotePath(decodeUrlPath(rest));
      const body = await readJsonBody(ctx.req);
      if (typeof body.to !== 'string') throw new ApiError('INVALID_REQUEST', 'move needs "to": "FOLDER/new/path"');
      const to = parseRemotePath(body.to);
      const cfg = requireFolder(ctx, services, folder, 'rw', 'move', path);
      if (to.folder !== folder) throw new ApiError('INVALID_REQUEST', `moving between folders (${folder} → ${to.folder}) is not supported yet: get and put instead`);
      if (!services.options.folderSync(folder)) throw new ApiError('UNAVAILABLE', `folder ${folder} is not running on this node`);
      if (to.path === path) throw new ApiError('INVALID_REQUEST', 'the source and the destination are the same');
      if (to.path.startsWith(path + '/')) throw new ApiError('INVALID_REQUEST', `cannot move ${folder}/${path} into itself`);
      const paths = new FolderPaths(cfg.path);
      const src = paths.resolve(path);
      const st = await lstat(src);
      // Check the destination fully before creating anything.
      const dstParentProblem = await (async () => {
        try {
          const dst = paths.resolve(to.path);
          return (await lstat(dst).catch(() => undefined)) ? `${folder}/${to.path} already exists` : undefined;
        } catch (err) {
          if ((err as { code?: string }).code === 'NOT_FOUND') return undefined;
          return (err as Error).message;
        }
      })();
      if (dstParentProblem) throw new ApiError('CONFLICT', dstParentProblem);
      const dst = paths.resolve(to.path, { createParents: true });
      await rename(src, dst);
      services.access.forgetSha256(folder, path);
      audit(ctx, services, 'move', folder, path, { detail: { to: to.path, type: st.isDirectory() ? 'dir' : 'file' } });
      await tellEngine(services, folder, [path, to.path]);
      sendJson(ctx.res, 200, { folder, path, to: to.path });
    },
  },
];
