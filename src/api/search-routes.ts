/**
 * GET /search?q=TEXT&in=FOLDER[/path]&type=EXT|GLOB&limit=N: files whose name or text content
 * contains TEXT (case-insensitive, at least 3 characters), in the folders the user may read,
 * with the matching lines. Served from the search index (search-index.ts), never by a scan.
 */
import { ApiError } from './api-error.js';
import { sendJson } from './http-io.js';
import { typeMatcher } from './listing.js';
import { parseRemotePath } from './remote-path.js';
import { accessTo, requireFolder, type Route } from './request-context.js';

export const searchRoutes: Route[] = [
  {
    method: 'GET',
    path: 'search',
    handler: async (ctx, services) => {
      const q = ctx.url.searchParams;
      const text = q.get('q');
      if (text === null) throw new ApiError('INVALID_REQUEST', 'search needs q (the text to find)');
      const inText = q.get('in');
      const under = inText ? parseRemotePath(inText, { allowRoot: true }) : undefined;
      if (under) requireFolder(ctx, services, under.folder, 'ro', 'search', under.path);
      const type = q.get('type');
      const limitText = q.get('limit');
      const limit = limitText === null ? 200 : Number(limitText);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw new ApiError('INVALID_REQUEST', 'limit must be a whole number from 1 to 10000');
      const folders = services.index.listFolders().map((f) => f.id).filter((id) => accessTo(ctx.user!, id));
      const hits = services.search.search({
        text,
        folders,
        ...(under ? { under } : {}),
        ...(type !== null ? { matchName: typeMatcher(type) } : {}),
        limit,
      });
      sendJson(ctx.res, 200, { hits });
    },
  },
];
