/**
 * Accounts for remote access, managed on the node itself (they write the node's database, so
 * they work whether or not it runs): `ferry user add|list|remove|grant|passwd` and
 * `ferry token create|list|revoke`. Passwords come from stdin (`--password-stdin`, as
 * `docker login` does) or a prompt without echo; they are hashed here with scrypt and never
 * printed or stored in clear. A token is printed once, at creation; only its hash is kept.
 */
import type { Command } from 'commander';
import { FerryError } from '../../core/errors.js';
import { hashPassword, passwordProblem } from '../../api/password.js';
import { parseTime } from '../../api/time-filter.js';
import { newToken, tokenHash } from '../../api/tokens.js';
import { AccessStore, type FolderAccess } from '../../index-store/access-store.js';
import type { SqliteIndexStore } from '../../index-store/sqlite-index-store.js';
import { databasePath } from '../../daemon/home.js';
import { printJson, printLine } from '../output.js';
import { readPassword } from './password-input.js';

type Action = <A extends unknown[]>(body: (home: string, json: boolean, ...args: A) => Promise<void> | void) => (...args: unknown[]) => Promise<void>;

/** Parses `ID`, `ID:ro` or `ID:rw` (default rw). */
export function parseFolderGrant(text: string): [string, FolderAccess] {
  const m = /^([^:]+)(?::(ro|rw))?$/.exec(text);
  if (!m) throw new FerryError('INVALID_CONFIG', `--folder ${JSON.stringify(text)}: use ID, ID:ro or ID:rw`);
  return [m[1]!, (m[2] as FolderAccess | undefined) ?? 'rw'];
}

export function registerAccountCommands(program: Command, action: Action, openStore: (home: string) => SqliteIndexStore): void {
  /** Opens both stores after checking the folders named in grants exist. */
  function withAccess<T>(home: string, fn: (access: AccessStore, index: SqliteIndexStore) => T): T {
    const index = openStore(home);
    const access = AccessStore.open(databasePath(home));
    try {
      return fn(access, index);
    } finally {
      access.close();
      index.close();
    }
  }

  function grants(index: SqliteIndexStore, specs: string[] | undefined): Record<string, FolderAccess> {
    const out: Record<string, FolderAccess> = {};
    for (const spec of specs ?? []) {
      const [id, access] = parseFolderGrant(spec);
      if (!index.getFolder(id)) throw new FerryError('UNKNOWN_FOLDER', `no folder ${id} (see \`ferry folder list\`)`);
      out[id] = access;
    }
    return out;
  }

  async function newPassword(stdin: boolean | undefined): Promise<string> {
    const password = await readPassword({ stdin: !!stdin, confirm: true });
    const problem = passwordProblem(password);
    if (problem) throw new FerryError('INVALID_CONFIG', problem);
    return password;
  }

  const user = program.command('user').description('manage users who may access this node remotely');

  user
    .command('add <name>')
    .description('add a user (password from --password-stdin or a prompt)')
    .option('--folder <id...>', 'folder(s) the user may access: ID, ID:ro (read-only) or ID:rw (read-write, the default)')
    .option('--admin', 'may use every folder read-write and read the whole audit log')
    .option('--password-stdin', 'read the password from standard input')
    .option('--no-password', 'create the user without a password (API tokens only)')
    .action(
      action(async (home, json, name: string, opts: { folder?: string[]; admin?: boolean; passwordStdin?: boolean; password: boolean }) => {
        // Validate everything that does not need the password first, so a typo costs no prompt.
        const folders = withAccess(home, (access, index) => {
          if (access.getUser(name)) throw new FerryError('ALREADY_EXISTS', `user ${name} already exists`);
          return grants(index, opts.folder);
        });
        const hash = opts.password ? await hashPassword(await newPassword(opts.passwordStdin)) : undefined;
        const u = withAccess(home, (access) => access.addUser(name, hash, folders, !!opts.admin));
        if (json) printJson(u);
        else printLine(`User ${u.name} added${describeGrants(u.folders, u.admin)}`);
      }),
    );

  user
    .command('list')
    .description('list users and their folder permissions')
    .action(
      action((home, json) => {
        const users = withAccess(home, (access) => access.listUsers());
        if (json) return printJson(users);
        for (const u of users) {
          const folders = Object.entries(u.folders).map(([id, a]) => `${id}:${a}`).join(',') || '-';
          printLine(`${u.name}\t${u.admin ? 'admin' : 'user'}\t${folders}\t${u.hasPassword ? 'password' : 'no password'}`);
        }
      }),
    );

  user
    .command('grant <name>')
    .description("add or change a user's folder permissions")
    .requiredOption('--folder <id...>', 'folder(s) and access: ID, ID:ro or ID:rw')
    .action(
      action((home, json, name: string, opts: { folder: string[] }) => {
        const u = withAccess(home, (access, index) => access.grant(name, grants(index, opts.folder)));
        if (json) printJson(u);
        else printLine(`User ${u.name}${describeGrants(u.folders, u.admin)}`);
      }),
    );

  user
    .command('passwd <name>')
    .description("set a user's password")
    .option('--password-stdin', 'read the password from standard input')
    .action(
      action(async (home, json, name: string, opts: { passwordStdin?: boolean }) => {
        withAccess(home, (access) => {
          if (!access.getUser(name)) throw new FerryError('NOT_FOUND', `no user ${name}`);
        });
        const hash = await hashPassword(await newPassword(opts.passwordStdin));
        withAccess(home, (access) => access.setPassword(name, hash));
        if (json) printJson({ user: name, passwordSet: true });
        else printLine(`Password of ${name} changed.`);
      }),
    );

  user
    .command('remove <name>')
    .description('remove a user and revoke their tokens')
    .action(
      action((home, json, name: string) => {
        withAccess(home, (access) => access.removeUser(name));
        if (json) printJson({ removed: name });
        else printLine(`User ${name} removed.`);
      }),
    );

  const token = program.command('token').description('manage API tokens for scripts');

  token
    .command('create <user>')
    .description('create an API token for a user and print it (once)')
    .option('--label <text>', 'what the token is for', 'api')
    .option('--expires <when>', 'expiry: an ISO date, or a duration from now (30d, 12h)')
    .action(
      action((home, json, name: string, opts: { label: string; expires?: string }) => {
        let expiresAt: string | undefined;
        if (opts.expires !== undefined) {
          const ms = expiryTime(opts.expires);
          if (ms <= Date.now()) throw new FerryError('INVALID_CONFIG', '--expires must be in the future');
          expiresAt = new Date(ms).toISOString();
        }
        const secret = newToken();
        const t = withAccess(home, (access) => access.addToken(name, tokenHash(secret), opts.label, expiresAt));
        if (json) printJson({ ...t, token: secret });
        else {
          printLine(secret);
          process.stderr.write(`Token ${t.id} for ${name}${expiresAt ? `, expires ${expiresAt}` : ''}. It is shown only now: store it safely.\n`);
        }
      }),
    );

  token
    .command('list [user]')
    .description('list API tokens (never the secrets)')
    .action(
      action((home, json, name: string | undefined) => {
        const tokens = withAccess(home, (access) => access.listTokens(name));
        if (json) return printJson(tokens);
        for (const t of tokens) printLine(`${t.id}\t${t.user}\t${t.label}\tcreated ${t.createdAt}\t${t.expiresAt ? `expires ${t.expiresAt}` : 'no expiry'}\t${t.lastUsedAt ? `used ${t.lastUsedAt}` : 'unused'}`);
      }),
    );

  token
    .command('revoke <id>')
    .description('revoke an API token')
    .action(
      action((home, json, id: string) => {
        const n = Number(id);
        if (!Number.isSafeInteger(n)) throw new FerryError('INVALID_CONFIG', `token ID must be a number, not ${JSON.stringify(id)}`);
        withAccess(home, (access) => access.revokeToken(n));
        if (json) printJson({ revoked: n });
        else printLine(`Token ${n} revoked.`);
      }),
    );
}

/** An ISO date, or a duration from now (parseTime reads durations as "ago"). */
function expiryTime(text: string): number {
  const now = Date.now();
  try {
    const t = parseTime(text, '--expires', now);
    return /^\s*\d+(\.\d+)?\s*[smhdw]\s*$/i.test(text) ? 2 * now - t : t;
  } catch (err) {
    throw new FerryError('INVALID_CONFIG', (err as Error).message);
  }
}

function describeGrants(folders: Record<string, FolderAccess>, admin: boolean): string {
  if (admin) return ' (admin: every folder, read-write)';
  const list = Object.entries(folders).map(([id, a]) => `${id} (${a === 'ro' ? 'read-only' : 'read-write'})`);
  return list.length ? `, may access ${list.join(', ')}` : ', with no folder yet (see `ferry user grant`)';
}
