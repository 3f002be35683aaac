/**
 * What `ferry login` remembers, in the CLI's home directory (files readable only by the user):
 * `remotes.json`, the token per node URL and which node is the default, and
 * `known-nodes.json`, the device ID (SHA-256 of the certificate) pinned for each host:port on
 * first use, as ssh's known_hosts. A pin is kept over logout so a later login to an impostor
 * is still refused; `ferry logout --forget-node` drops it.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RemoteError } from './remote-error.js';

export interface RemoteLogin {
  readonly url: string;
  readonly user: string;
  readonly token: string;
  readonly deviceId: string;
  readonly loggedInAt: string;
}

interface RemotesFile {
  default?: string;
  remotes: Record<string, RemoteLogin>;
}

const REMOTES = 'remotes.json';
const KNOWN = 'known-nodes.json';

/** `https://host:port` with the default port made explicit, no trailing slash, no path. */
export function normalizeUrl(text: string): { url: string; host: string; port: number; hostPort: string } {
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw new RemoteError('INVALID_REQUEST', `${JSON.stringify(text)} is not a node address: use https://HOST:PORT`);
  }
  if (u.protocol !== 'https:') throw new RemoteError('INVALID_REQUEST', `${text}: a node is reached over https://`);
  if (u.pathname !== '/' || u.search || u.username) throw new RemoteError('INVALID_REQUEST', `${text}: use https://HOST:PORT, with no path, query or user`);
  const port = u.port === '' ? 22100 : Number(u.port);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const hostPort = `${u.hostname}:${port}`;
  return { url: `https://${hostPort}`, host, port, hostPort };
}

export class Credentials {
  constructor(private readonly home: string) {}

  current(url?: string): RemoteLogin {
    const file = this.readRemotes();
    const key = url ? normalizeUrl(url).url : file.default;
    if (!key) throw new RemoteError('NOT_LOGGED_IN', 'not logged in to any node: run `ferry login https://HOST:PORT` first');
    const login = file.remotes[key];
    if (!login) throw new RemoteError('NOT_LOGGED_IN', `not logged in to ${key}: run \`ferry login ${key}\``);
    return login;
  }

  list(): { default?: string; remotes: RemoteLogin[] } {
    const f = this.readRemotes();
    return { ...(f.default ? { default: f.default } : {}), remotes: Object.values(f.remotes) };
  }

  save(login: RemoteLogin): void {
    const f = this.readRemotes();
    f.remotes[login.url] = login;
    f.default = login.url;
    this.write(REMOTES, f);
  }

  remove(url: string): RemoteLogin | undefined {
    const f = this.readRemotes();
    const login = f.remotes[url];
    delete f.remotes[url];
    if (f.default === url) {
      const rest = Object.keys(f.remotes);
      if (rest.length) f.default = rest[0];
      else delete f.default;
    }
    this.write(REMOTES, f);
    return login;
  }

  pinned(hostPort: string): string | undefined {
    return this.readKnown()[hostPort];
  }

  pin(hostPort: string, deviceId: string): void {
    const k = this.readKnown();
    k[hostPort] = deviceId;
    this.write(KNOWN, k);
  }

  unpin(hostPort: string): void {
    const k = this.readKnown();
    delete k[hostPort];
    this.write(KNOWN, k);
  }

  private readRemotes(): RemotesFile {
    const v = this.read(REMOTES) as RemotesFile | undefined;
    return v && typeof v.remotes === 'object' ? v : { remotes: {} };
  }

  private readKnown(): Record<string, string> {
    return (this.read(KNOWN) as Record<string, string> | undefined) ?? {};
  }

  private read(name: string): unknown {
    let text: string;
    try {
      text = readFileSync(join(this.home, name), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new RemoteError('INVALID_CONFIG', `${join(this.home, name)} is not valid JSON: fix or delete it`);
    }
  }

  private write(name: string, value: unknown): void {
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    const file = join(this.home, name);
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }
}
