/**
 * Account routes: POST /login (user name + password → token), POST /logout (revokes the
 * token used), GET /me, GET /audit. Failed logins are throttled per (user, address) and
 * audited; a password never appears in a log or the audit log.
 */
import { MAX_PASSWORD_LENGTH, verifyPassword } from './password.js';
import { accessTo, audit, type Route } from './request-context.js';
import { ApiError } from './api-error.js';
import { readJsonBody, sendJson } from './http-io.js';
import { parseRemotePath } from './remote-path.js';
import { parseTime } from './time-filter.js';
import { newToken, tokenHash } from './tokens.js';

const LOGIN_TOKEN_DAYS = 30;

export const accountRoutes: Route[] = [
  {
    method: 'POST',
    path: 'login',
    public: true,
    handler: async (ctx, services) => {
      const body = await readJsonBody(ctx.req);
      const user = body.user ?? body.name;
      const password = body.password;
      if (typeof user !== 'string' || user === '' || user.length > 64) throw new ApiError('INVALID_REQUEST', 'login needs "user" (a user name)');
      if (typeof password !== 'string' || password.length > MAX_PASSWORD_LENGTH) throw new ApiError('INVALID_REQUEST', 'login needs "password"');
      const wait = services.throttle.waitMs(user, ctx.address);
      if (wait > 0) {
        const seconds = Math.ceil(wait / 1000);
        throw new ApiError('RATE_LIMITED', `too many failed logins for ${user} from ${ctx.address}: try again in ${seconds} s`, {
          headers: { 'retry-after': String(seconds) },
        });
      }
      const ok = await verifyPassword(password, services.access.passwordHash(user));
      if (!ok) {
        const delay = services.throttle.failed(user, ctx.address);
        audit(ctx, services, 'login', undefined, undefined, { user, ok: false, error: 'UNAUTHORIZED' });
        throw new ApiError('UNAUTHORIZED', `wrong user name or password (next attempt allowed in ${Math.ceil(delay / 1000)} s)`);
      }
      services.throttle.succeeded(user, ctx.address);
      const token = newToken();
      const expiresAt = new Date(Date.now() + LOGIN_TOKEN_DAYS * 86_400_000).toISOString();
      const label = typeof body.label === 'string' ? body.label.slice(0, 100) : 'login';
      services.access.addToken(user, tokenHash(token), label, expiresAt);
      const record = services.access.getUser(user)!;
      audit(ctx, services, 'login', undefined, undefined, { user });
      sendJson(ctx.res, 200, { token, user: record.name, admin: record.admin, folders: record.folders, expiresAt });
    },
  },
  {
    method: 'POST',
    path: 'logout',
    handler: async (ctx, services) => {
      services.access.revokeTokenHash(tokenHash(ctx.token!));
      audit(ctx, services, 'logout', undefined, undefined);
      sendJson(ctx.res, 200, { loggedOut: true });
    },
  },
  {
    method: 'GET',
    path: 'me',
    handler: async (ctx) => {
      const u = ctx.user!;
      sendJson(ctx.res, 200, { user: u.name, admin: u.admin, folders: u.folders });
    },
  },
  {
    method: 'GET',
    path: 'audit',
    handler: async (ctx, services) => {
      const q = ctx.url.searchParams;
      const user = ctx.user!;
      const since = q.get('since');
      const until = q.get('until');
      const path = q.get('path');
      if (path !== null) parseRemotePath(path, { allowRoot: true });
      const limitText = q.get('limit');
      const limit = limitText === null ? 1000 : Number(limitText);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 100_000) throw new ApiError('INVALID_REQUEST', 'limit must be a whole number from 1 to 100000');
      const readable = services.index.listFolders().map((f) => f.id).filter((id) => accessTo(user, id));
      const entries = services.access.queryAudit({
        ...(since !== null ? { since: new Date(parseTime(since, 'since')).toISOString() } : {}),
        ...(until !== null ? { until: new Date(parseTime(until, 'until')).toISOString() } : {}),
        ...(q.get('user') ? { user: q.get('user')! } : {}),
        ...(path ? { path: path.replace(/\/+$/, '') } : {}),
        ...(user.admin ? {} : { visibleTo: { user: user.name, folders: readable } }),
        limit,
      });
      sendJson(ctx.res, 200, { entries });
    },
  },
];
