/**
 * What the API's route handlers share: the services (stores, throttle, options), the
 * per-request context (user, address), the route shape, and the permission and audit helpers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../core/errors.js';
import type { FolderSync } from '../engine/folder-sync.js';
import type { AccessStore, FolderAccess, UserRecord } from '../index-store/access-store.js';
import type { FolderConfig } from '../index-store/config-types.js';
import type { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { ApiError } from './api-error.js';
import type { LoginThrottle } from './login-throttle.js';
import type { SearchIndex } from './search-index.js';

export interface ApiLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RemoteApiOptions {
  /** The node's index database file. */
  readonly databaseFile: string;
  /** A running folder's sync loop, told about files the API wrote or deleted. */
  readonly folderSync: (id: string) => FolderSync | undefined;
  readonly logger: ApiLogger;
  /** Largest upload accepted, in bytes (default 1 TiB). */
  readonly maxUploadBytes?: number;
  /** How long an upload waits for the engine to index the new file before answering (default 10 s). */
  readonly indexWaitMs?: number;
}

/** What route handlers share. */
export interface ApiServices {
  readonly access: AccessStore;
  readonly index: SqliteIndexStore;
  readonly throttle: LoginThrottle;
  readonly options: RemoteApiOptions;
  readonly search: SearchIndex;
  folder(id: string): FolderConfig | undefined;
  /** Brings the search index up to date (after the API changed files). */
  refreshSearch(): Promise<void>;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** The client's IP address. */
  readonly address: string;
  /** The authenticated user (set for every route but login and openapi.json). */
  user?: UserRecord;
  /** The token the request authenticated with. */
  token?: string;
  /**
   * The client sent `Expect: 100-continue` and waits to be asked for its body (see
   * RemoteApi.handle with expectsContinue): a refusal now is answered before any of the body is sent.
   */
  continuePending?: boolean;
}

export type Handler = (ctx: RequestContext, services: ApiServices, rest: string) => Promise<void>;

export interface Route {
  readonly method: string | readonly string[];
  /** Path after /api/v1/, exact (`login`) or a prefix ending in `/` whose tail is passed as `rest`. */
  readonly path: string;
  readonly public?: boolean;
  /**
   * The handler asks for the body itself (acceptBody) once its checks passed, so a refused
   * upload costs the client nothing; every other route's body is asked for before it runs.
   */
  readonly checksBeforeBody?: boolean;
  readonly handler: Handler;
}

export function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The user's access to a folder: admins have read-write access to every folder. */
export function accessTo(user: UserRecord, folder: string): FolderAccess | undefined {
  return user.admin ? 'rw' : user.folders[folder];
}

/**
 * Checks that the folder exists and the user may use it as asked; a folder the user has no
 * grant for is reported as missing, so names of other folders do not leak. Refusals of
 * writes are audited.
 */
export function requireFolder(ctx: RequestContext, services: ApiServices, folder: string, need: FolderAccess, action: string, path?: string): FolderConfig {
  const user = ctx.user!;
  const access = accessTo(user, folder);
  const cfg = services.folder(folder);
  if (!cfg || !access) {
    if (need === 'rw') audit(ctx, services, action, folder, path, { ok: false, error: 'UNKNOWN_FOLDER' });
    throw new ApiError('UNKNOWN_FOLDER', `no folder ${folder} (or no access to it)`);
  }
  if (need === 'rw' && access !== 'rw') {
    audit(ctx, services, action, folder, path, { ok: false, error: 'FORBIDDEN' });
    throw new ApiError('FORBIDDEN', `user ${user.name} may only read folder ${folder}`);
  }
  return cfg;
}

export function audit(
  ctx: RequestContext,
  services: ApiServices,
  action: string,
  folder: string | undefined,
  path: string | undefined,
  extra: { ok?: boolean; error?: string; detail?: Record<string, unknown>; user?: string } = {},
): void {
  try {
    services.access.audit({
      user: extra.user ?? ctx.user?.name ?? '',
      action,
      ...(folder !== undefined ? { folder } : {}),
      ...(path !== undefined && path !== '' ? { path } : {}),
      address: ctx.address,
      ...(extra.ok === false ? { ok: false } : {}),
      ...(extra.error ? { error: extra.error } : {}),
      ...(extra.detail ? { detail: extra.detail } : {}),
    });
  } catch (err) {
    services.options.logger.error({ err: errorMessage(err), action }, 'cannot write the audit log');
  }
}

/** Asks a client waiting on `Expect: 100-continue` for its body; call once the request checked out. */
export function acceptBody(ctx: RequestContext): void {
  if (!ctx.continuePending) return;
  ctx.continuePending = false;
  ctx.res.writeContinue();
}

/** A boolean query flag: present without value, or 1/true/yes. */
export function flag(url: URL, name: string): boolean {
  const v = url.searchParams.get(name);
  return v !== null && ['', '1', 'true', 'yes'].includes(v.toLowerCase());
}
