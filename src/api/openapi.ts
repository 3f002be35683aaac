/**
 * The OpenAPI 3.1 description of the REST API, served at GET /api/v1/openapi.json. Written by
 * hand next to the routes; openapi.test.ts checks that every route is described.
 */
import { API_ERROR_CODES } from './api-error.js';

const pathParam = {
  name: 'path',
  in: 'path',
  required: true,
  description: 'FOLDER_ID/path/inside, each segment percent-encoded',
  schema: { type: 'string' },
};

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const standardErrors = {
  '400': errorResponse('invalid path or request (INVALID_PATH, INVALID_REQUEST)'),
  '401': errorResponse('no or bad token (UNAUTHORIZED)'),
  '403': errorResponse('read-only access to the folder (FORBIDDEN)'),
  '404': errorResponse('no such folder, file or endpoint (UNKNOWN_FOLDER, NOT_FOUND)'),
};

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ferry node REST API',
      version: '1',
      description:
        'Remote access to the folders of one Ferry node. Every endpoint but /login and /openapi.json needs ' +
        '`Authorization: Bearer <token>`. Errors are `{"error":{"code","message"}}` with a stable code.',
    },
    servers: [{ url: '/api/v1' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string', enum: Object.keys(API_ERROR_CODES) }, message: { type: 'string' } },
            },
          },
        },
        FileInfo: {
          type: 'object',
          required: ['path', 'name', 'type', 'size', 'mtime', 'mtimeMs', 'mode'],
          properties: {
            path: { type: 'string' },
            name: { type: 'string' },
            type: { type: 'string', enum: ['file', 'dir', 'symlink'] },
            size: { type: 'integer' },
            mtime: { type: 'string', format: 'date-time' },
            mtimeMs: { type: 'number' },
            mode: { type: 'integer' },
            contentHash: { type: 'string', description: "the index's SHA-256 over the file's block hashes" },
            sha256: { type: 'string', description: 'whole-file SHA-256, when known (always with ?sha256=1)' },
            symlinkTarget: { type: 'string' },
          },
        },
        AuditEntry: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            at: { type: 'string', format: 'date-time' },
            user: { type: 'string' },
            action: { type: 'string', enum: ['login', 'logout', 'upload', 'download', 'delete', 'mkdir', 'move'] },
            folder: { type: 'string' },
            path: { type: 'string' },
            address: { type: 'string' },
            ok: { type: 'boolean' },
            error: { type: 'string' },
            detail: { type: 'object' },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/openapi.json': { get: { summary: 'this document', security: [], responses: { '200': { description: 'OpenAPI document' } } } },
      '/login': {
        post: {
          summary: 'trade a user name and password for a token (30 days)',
          security: [],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { type: 'object', required: ['user', 'password'], properties: { user: { type: 'string' }, password: { type: 'string' }, label: { type: 'string' } } },
              },
            },
          },
          responses: {
            '200': { description: 'token, user, folders, expiresAt' },
            '400': errorResponse('INVALID_REQUEST'),
            '401': errorResponse('wrong user name or password (UNAUTHORIZED)'),
            '429': errorResponse('too many failed attempts from this address for this user (RATE_LIMITED); see Retry-After'),
          },
        },
      },
      '/logout': { post: { summary: 'revoke the token used for this request', responses: { '200': { description: 'done' }, '401': standardErrors['401'] } } },
      '/me': { get: { summary: 'the authenticated user and its folder permissions', responses: { '200': { description: 'user' }, '401': standardErrors['401'] } } },
      '/folders': {
        get: { summary: 'folders the user may access, with access (ro|rw), file count and bytes', responses: { '200': { description: 'folders' }, '401': standardErrors['401'] } },
      },
      '/files/{path}': {
        get: {
          summary: 'list a directory (or describe one file) from the index',
          parameters: [
            pathParam,
            { name: 'recursive', in: 'query', schema: { type: 'boolean' } },
            { name: 'since', in: 'query', description: 'mtime at or after: ISO date/time, epoch ms, or a duration ago (2h, 7d)', schema: { type: 'string' } },
            { name: 'until', in: 'query', description: 'mtime before (same forms as since)', schema: { type: 'string' } },
            { name: 'type', in: 'query', description: 'extension (txt) or glob on the name (*.jp*g); excludes directories', schema: { type: 'string' } },
            { name: 'sha256', in: 'query', description: 'compute whole-file SHA-256 for every file listed', schema: { type: 'boolean' } },
          ],
          responses: {
            '200': {
              description: 'listing',
              content: { 'application/json': { schema: { type: 'object', properties: { folder: { type: 'string' }, path: { type: 'string' }, type: { type: 'string' }, entries: { type: 'array', items: { $ref: '#/components/schemas/FileInfo' } } } } } },
            },
            ...standardErrors,
          },
        },
      },
      '/hash/{path}': {
        get: { summary: 'whole-file SHA-256, size and mtime of one file', parameters: [pathParam], responses: { '200': { description: 'sha256, size, mtime' }, ...standardErrors } },
      },
      '/blocks/{path}': {
        get: {
          summary: "the file's content-defined blocks from the index (offset, size, SHA-256), to fetch only the blocks a client lacks with Range requests",
          parameters: [pathParam],
          responses: { '200': { description: '{size, mtimeMs, sha256, etag, blocks: [{offset, size, hash}]}' }, '409': errorResponse('the file changed since it was indexed (CONFLICT): download it whole'), ...standardErrors },
        },
      },
      '/content/{path}': {
        get: {
          summary: 'download a file; supports one Range (206) and If-Range on the ETag; X-Ferry-SHA256 gives the whole-file hash',
          parameters: [pathParam, { name: 'Range', in: 'header', schema: { type: 'string' } }, { name: 'If-Range', in: 'header', schema: { type: 'string' } }],
          responses: {
            '200': { description: 'the file', content: { 'application/octet-stream': {} } },
            '206': { description: 'the requested range' },
            '409': errorResponse('not a regular file (CONFLICT)'),
            '416': errorResponse('RANGE_NOT_SATISFIABLE'),
            ...standardErrors,
          },
        },
        head: { summary: 'as GET without the body', parameters: [pathParam], responses: { '200': { description: 'headers only' } } },
        put: {
          summary: 'upload a file (created or replaced atomically; the old version goes to the version area). Send Expect: 100-continue to have a refusal answered before the body is sent.',
          parameters: [
            pathParam,
            { name: 'X-Ferry-SHA256', in: 'header', description: 'SHA-256 of the whole file; a mismatch changes nothing (HASH_MISMATCH). Makes an interrupted upload resumable.', schema: { type: 'string' } },
            { name: 'X-Ferry-Plan', in: 'header', description: 'an upload plan from POST /upload-plan: the body is then only the missing blocks, in file order', schema: { type: 'string' } },
            { name: 'Content-Range', in: 'header', description: 'bytes START-(TOTAL-1)/TOTAL: the rest of an interrupted upload (START from GET /uploads/…)', schema: { type: 'string' } },
            { name: 'X-Ferry-Mtime', in: 'header', description: 'modification time to set, ms since the epoch', schema: { type: 'number' } },
          ],
          requestBody: { required: true, content: { 'application/octet-stream': {} } },
          responses: {
            '200': { description: 'replaced' },
            '201': { description: 'created' },
            '409': errorResponse('target is a directory or not a regular file, or a resume from the wrong offset (CONFLICT; X-Ferry-Offset)'),
            '413': errorResponse('larger than the node accepts (TOO_LARGE)'),
            '507': errorResponse('not enough disk space for the declared size, or the disk filled up during the upload (INSUFFICIENT_STORAGE; the temporary file is removed)'),
            ...standardErrors,
          },
        },
        delete: {
          summary: 'delete a file or directory (directories with content need ?recursive=1); files go to the version area',
          parameters: [pathParam, { name: 'recursive', in: 'query', schema: { type: 'boolean' } }],
          responses: { '200': { description: 'deleted' }, '409': errorResponse('directory not empty (CONFLICT)'), ...standardErrors },
        },
      },
      '/upload-plan/{path}': {
        post: {
          summary: 'plan an upload that sends only the blocks the node lacks; then PUT /content/{path} with X-Ferry-Plan and the missing blocks as the body. After an interrupted attempt the plan starts after the blocks the node kept (resumedFrom) and lists only the missing blocks after them.',
          parameters: [pathParam],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { type: 'object', required: ['size', 'sha256', 'blocks'], properties: { size: { type: 'integer' }, sha256: { type: 'string' }, blocks: { type: 'array', items: { type: 'object', properties: { hash: { type: 'string' }, size: { type: 'integer' } } } } } } } },
          },
          responses: {
            '200': { description: '{plan, missing: [block indexes], missingBytes, resumedFrom}' },
            '409': errorResponse('the target is a directory or not a regular file (CONFLICT)'),
            '413': errorResponse('larger than the node accepts (TOO_LARGE)'),
            '507': errorResponse('not enough disk space (INSUFFICIENT_STORAGE)'),
            ...standardErrors,
          },
        },
      },
      '/uploads/{path}': {
        get: {
          summary: 'how many bytes of an interrupted upload of this content the node holds; refuses as the upload would (target, size limit, free space), so a client learns that before sending',
          parameters: [pathParam, { name: 'sha256', in: 'query', required: true, schema: { type: 'string' } }, { name: 'size', in: 'query', required: true, schema: { type: 'integer' } }],
          responses: {
            '200': { description: '{offset}' },
            '409': errorResponse('the target is a directory or not a regular file (CONFLICT)'),
            '413': errorResponse('larger than the node accepts (TOO_LARGE)'),
            '507': errorResponse('not enough disk space (INSUFFICIENT_STORAGE)'),
            ...standardErrors,
          },
        },
      },
      '/mkdir/{path}': {
        post: {
          summary: 'create a directory and its parents (201 created, 200 already there)',
          parameters: [pathParam],
          responses: { '200': { description: 'existed' }, '201': { description: 'created' }, '409': errorResponse('a file is in the way (CONFLICT)'), ...standardErrors },
        },
      },
      '/move/{path}': {
        post: {
          summary: 'move or rename a file or directory within its folder; the destination must not exist',
          parameters: [pathParam],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['to'], properties: { to: { type: 'string', description: 'FOLDER/new/path (same folder)' } } } } } },
          responses: { '200': { description: '{folder, path, to}' }, '409': errorResponse('the destination exists (CONFLICT)'), ...standardErrors },
        },
      },
      '/versions/{path}': {
        get: {
          summary: "the replaced and deleted files kept in the folder's version area under FOLDER[/path] (a file, or everything under a directory), by path, newest first",
          parameters: [pathParam],
          responses: { '200': { description: '{folder, path, versions: [{path, replacedAt, size}]}' }, ...standardErrors },
        },
      },
      '/restore/{path}': {
        post: {
          summary: 'put a file back as it was before it was replaced or deleted (its newest version, or the one replaced at `at`), as a new edit that syncs; what is there now is kept as a version. A directory: every file under it that is missing now. With `asOf`: rewind the path (a file, a directory, or the whole folder given as FOLDER alone) to how it was at that time',
          parameters: [
            pathParam,
            { name: 'at', in: 'query', description: 'UTC time as the listing gives it (2026-12-07T18:13:48Z) or a prefix of it (2026-12-07)', schema: { type: 'string' } },
            { name: 'asOf', in: 'query', description: 'rewind to this time (ISO, 2026-12-07T18:13:48Z); files replaced or deleted by sync since then get the content they had then', schema: { type: 'string' } },
            { name: 'dryRun', in: 'query', description: 'with asOf, `true`: report what would be put back, change nothing (read access is enough)', schema: { type: 'boolean' } },
          ],
          responses: {
            '200': { description: '{folder, restored: [{path, replacedAt}], skipped: [path]}; with asOf: {folder, asOf, dryRun, restored: [{path, replacedAt}], changedSince: [path], unchanged, failed: [{path, message}]}' },
            ...standardErrors,
            '404': errorResponse('no such folder, or no such version (UNKNOWN_FOLDER, NOT_FOUND)'),
            '409': errorResponse('a directory is in the way (ALREADY_EXISTS)'),
          },
        },
      },
      '/search': {
        get: {
          summary: 'files whose name or text content contains q (case-insensitive, 3+ characters), with matching lines, from the search index',
          parameters: [
            { name: 'q', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'in', in: 'query', description: 'FOLDER or FOLDER/path to search under', schema: { type: 'string' } },
            { name: 'type', in: 'query', description: 'extension or glob on the name', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 10000 } },
          ],
          responses: { '200': { description: '{hits: [{folder, path, type, nameMatch, lines: [{line, text}]}]}' }, ...standardErrors },
        },
      },
      '/audit': {
        get: {
          summary: 'the audit log (admins: all; others: their own entries and those of folders they can read)',
          parameters: [
            { name: 'since', in: 'query', schema: { type: 'string' } },
            { name: 'until', in: 'query', schema: { type: 'string' } },
            { name: 'user', in: 'query', schema: { type: 'string' } },
            { name: 'path', in: 'query', description: 'FOLDER or FOLDER/path prefix', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100000 } },
          ],
          responses: { '200': { description: '{entries: AuditEntry[]}' }, ...standardErrors },
        },
      },
    },
  };
}
