/**
 * The REST API under /api/v1/ on the node's HTTPS port (PeerServer hands it every plain HTTP
 * request). It authenticates each request (Bearer token; POST /login trades a password for
 * one), checks the folder permission, validates every path before touching the disk, and
 * records who did what in the audit log. Routes live in account-routes.ts, file-routes.ts,
 * content-routes.ts, upload.ts, tree-routes.ts, search-routes.ts and version-routes.ts; request-context.ts has
 * what they share; this module holds routing, authentication and error mapping.
 * Plain node:http, no framework: uploads and Range downloads need the raw streams anyway.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../core/errors.js';
import { AccessStore } from '../index-store/access-store.js';
import { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { accountRoutes } from './account-routes.js';
import { ApiError, toApiError } from './api-error.js';
import { contentRoutes } from './content-routes.js';
import { fileRoutes } from './file-routes.js';
import { treeRoutes } from './tree-routes.js';
import { discardBody, sendError, sendJson } from './http-io.js';
import { LoginThrottle } from './login-throttle.js';
import { openApiDocument } from './openapi.js';
import { acceptBody, clientAddress, type ApiServices, type RemoteApiOptions, type RequestContext, type Route } from './request-context.js';
import { bearerToken, tokenHash } from './tokens.js';
import { pruneStaleUploads } from './upload.js';
import { SearchIndex } from './search-index.js';
import { searchRoutes } from './search-routes.js';
import { versionRoutes } from './version-routes.js';
import { dirname, join } from 'node:path';

export type { RemoteApiOptions } from './request-context.js';

export const API_PREFIX = '/api/v1/';
const SEARCH_REFRESH_MS = 2000;

export class RemoteApi {
  private readonly routes: Route[];
  private closed = false;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly searchTimer: NodeJS.Timeout;

  private constructor(private readonly services: ApiServices) {
    this.routes = [
      { method: 'GET', path: 'openapi.json', public: true, handler: async (ctx) => sendJson(ctx.res, 200, openApiDocument()) },
      ...accountRoutes,
      ...fileRoutes,
      ...contentRoutes,
      ...treeRoutes,
      ...searchRoutes,
      ...versionRoutes,
    ];
    this.pruneTimer = setInterval(() => void this.pruneUploads(), 3600_000);
    this.pruneTimer.unref();
    void this.pruneUploads();
    // The search index follows changes from every source (watcher, peers, the API) by polling
    // the index's sequence numbers; the API's own writes refresh it before they answer.
    this.searchTimer = setInterval(() => void this.services.refreshSearch(), SEARCH_REFRESH_MS);
    this.searchTimer.unref();
  }

  /** Drops interrupted uploads nobody resumed within a day. */
  private async pruneUploads(): Promise<void> {
    try {
      for (const f of this.services.index.listFolders()) await pruneStaleUploads(f.path);
    } catch (err) {
      this.services.options.logger.warn({ err: errorMessage(err) }, 'cannot prune stale uploads');
    }
  }

  static open(options: RemoteApiOptions): RemoteApi {
    const access = AccessStore.open(options.databaseFile);
    const index = SqliteIndexStore.open(options.databaseFile);
    const search = SearchIndex.open(join(dirname(options.databaseFile), 'search.db'));
    const api: RemoteApi = new RemoteApi({
      access,
      index,
      search,
      throttle: new LoginThrottle(),
      options,
      folder: (id) => index.getFolder(id),
      refreshSearch: async () => {
        // A node nobody can log in to has no use for a search index: it costs nothing there.
        if (api.closed || !access.hasUsers()) return;
        try {
          await search.updateAll(index);
        } catch (err) {
          if (!api.closed) options.logger.warn({ err: errorMessage(err) }, 'cannot update the search index');
        }
      },
    });
    return api;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pruneTimer);
    clearInterval(this.searchTimer);
    this.services.access.close();
    this.services.index.close();
    this.services.search.close();
  }

  /**
   * The PeerServer request handler. Never throws; errors become JSON responses.
   * `expectsContinue`: the request sent `Expect: 100-continue` (the server's 'checkContinue'
   * event). The client is then asked for its body only once the request checked out
   * (authentication, permission, path, target, size, free space), so a refused upload is
   * answered before any of its body is sent.
   */
  handle(req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
    void this.dispatch(req, res, expectsContinue);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, continuePending: boolean): Promise<void> {
    const address = clientAddress(req);
    let ctx: RequestContext | undefined;
    try {
      const url = new URL(req.url ?? '/', 'https://ferry.invalid');
      ctx = { req, res, url, address, continuePending };
      if (this.closed) throw new ApiError('UNAVAILABLE', 'the node is shutting down');
      // The raw path, not url.pathname: URL parsing would silently resolve `..` segments,
      // and a path with `..` must be refused as such, not quietly mean something else.
      const raw = (req.url ?? '/').split('?')[0]!;
      if (!raw.startsWith(API_PREFIX)) throw new ApiError('NOT_FOUND', `no such resource: ${req.method} ${raw}`);
      const sub = raw.slice(API_PREFIX.length);
      const { route, rest } = this.match(req.method ?? 'GET', sub);
      if (!route.public) this.authenticate(ctx);
      if (!route.checksBeforeBody) acceptBody(ctx);
      await route.handler(ctx, this.services, rest);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) this.services.options.logger.error({ err: errorMessage(err), url: req.url }, 'API request failed');
      else this.services.options.logger.debug({ code: apiErr.code, url: req.url, address }, apiErr.message);
      if (ctx?.continuePending ?? continuePending) {
        // The client still holds its body back: answer, and close rather than wait for it.
        sendError(res, apiErr, { connection: 'close' });
      } else {
        discardBody(req, res);
        sendError(res, apiErr);
      }
    }
  }

  private match(method: string, sub: string): { route: Route; rest: string } {
    let pathMatched = false;
    for (const route of this.routes) {
      const prefix = route.path.endsWith('/');
      const hit = prefix ? sub === route.path.slice(0, -1) || sub.startsWith(route.path) : sub === route.path;
      if (!hit) continue;
      pathMatched = true;
      const methods = typeof route.method === 'string' ? [route.method] : route.method;
      if (!methods.includes(method)) continue;
      return { route, rest: prefix ? sub.slice(route.path.length) : '' };
    }
    if (pathMatched) throw new ApiError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${API_PREFIX}${sub}`);
    throw new ApiError('NOT_FOUND', `no such API endpoint: ${API_PREFIX}${sub}`);
  }

  private authenticate(ctx: RequestContext): void {
    const token = bearerToken(ctx.req.headers.authorization);
    const challenge = { 'www-authenticate': 'Bearer realm="ferry"' };
    if (!token) throw new ApiError('UNAUTHORIZED', 'authentication required: send Authorization: Bearer <token> (see POST /api/v1/login)', { headers: challenge });
    const user = this.services.access.userForToken(tokenHash(token));
    if (!user) throw new ApiError('UNAUTHORIZED', 'the token is unknown, revoked or expired: log in again', { headers: challenge });
    ctx.user = user;
    ctx.token = token;
  }
}
