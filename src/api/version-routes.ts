/**
 * The version area over the API: GET /versions/{folder}[/{path}] lists the replaced and deleted
 * files kept under a path (read access), newest first; POST /restore/{folder}/{path}[?at=TIME]
 * puts a file back, or the missing files under a directory (read-write access, audited), and
 * POST /restore/{folder}[/{path}]?asOf=TIME rewinds a directory or the folder. The same rules
 * as `ferry versions` / `ferry restore` on the node's own machine.
 */
import { parseAsOf, rewind } from '../engine/rewind.js';
import { restorePath, Versioner } from '../engine/versioner.js';
import { ApiError } from './api-error.js';
import { sendJson } from './http-io.js';
import { decodeUrlPath, parseRemotePath } from './remote-path.js';
import { audit, requireFolder, type ApiServices, type RequestContext, type Route } from './request-context.js';
import { tellEngine } from './upload.js';

export const versionRoutes: Route[] = [
  {
    method: 'GET',
    path: 'versions/',
    handler: async (ctx, services, rest) => {
      const { folder, path } = parseRemotePath(decodeUrlPath(rest), { allowRoot: true });
      const cfg = requireFolder(ctx, services, folder, 'ro', 'versions', path);
      const versions = new Versioner(cfg.path, cfg.versionsKeepDays)
        .list(path)
        .map((v) => ({ path: v.path, replacedAt: new Date(v.replacedAtMs).toISOString(), size: v.size }));
      sendJson(ctx.res, 200, { folder, path, versions });
    },
  },
  {
    method: 'POST',
    path: 'restore/',
    handler: async (ctx, services, rest) => {
      const asOf = ctx.url.searchParams.get('asOf');
      if (asOf !== null) return rewindRoute(ctx, services, rest, asOf);
      const { folder, path } = parseRemotePath(decodeUrlPath(rest));
      const cfg = requireFolder(ctx, services, folder, 'rw', 'restore', path);
      if (!services.options.folderSync(folder)) throw new ApiError('UNAVAILABLE', `folder ${folder} is not running on this node`);
      const at = ctx.url.searchParams.get('at') ?? undefined;
      const result = await restorePath(new Versioner(cfg.path, cfg.versionsKeepDays), path, at);
      for (const r of result.restored) services.access.forgetSha256(folder, r.path);
      audit(ctx, services, 'restore', folder, path, { detail: { restored: result.restored.map((r) => ({ path: r.path, replacedAt: r.replacedAt })) } });
      await tellEngine(services, folder, result.restored.map((r) => r.path));
      sendJson(ctx.res, 200, { folder, ...result, restored: result.restored.map(({ from: _from, kept: _kept, ...r }) => r) });
    },
  },
];

/** POST /restore/{folder}[/{path}]?asOf=TIME[&dryRun=true]: rewinds a directory or the whole folder (a dry run needs read access only). */
async function rewindRoute(ctx: RequestContext, services: ApiServices, rest: string, asOfText: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest), { allowRoot: true });
  const dryRun = ctx.url.searchParams.get('dryRun') === 'true';
  const cfg = requireFolder(ctx, services, folder, dryRun ? 'ro' : 'rw', 'restore', path);
  if (!services.options.folderSync(folder)) throw new ApiError('UNAVAILABLE', `folder ${folder} is not running on this node`);
  const result = await rewind(new Versioner(cfg.path, cfg.versionsKeepDays), path, parseAsOf(asOfText), { dryRun });
  if (!dryRun) {
    for (const r of result.restored) services.access.forgetSha256(folder, r.path);
    audit(ctx, services, 'restore', folder, path, { detail: { asOf: result.asOf, restored: result.restored.map((r) => ({ path: r.path, replacedAt: r.replacedAt })) } });
    await tellEngine(services, folder, result.restored.map((r) => r.path));
  }
  sendJson(ctx.res, 200, { folder, ...result, restored: result.restored.map(({ from: _from, kept: _kept, ...r }) => r) });
}
