/**
 * End-to-end harness: real `ferry` processes on loopback, each with its own home and folders
 * under one temporary directory per test file.
 *
 *   const cluster = useCluster('mesh');          // registers beforeEach/afterAll hooks
 *   const a = await cluster.startNode('a');      // ferry init --name a; ferry start --listen 127.0.0.1:PORT
 *   await connectMesh([a, b, c], 'docs');        // ferry folder add / ferry peer add on each side
 *   await waitConverged([a, b, c], 'docs');      // equal trees everywhere and every node says inSync
 *
 * Every node's stdout/stderr goes to `<node dir>/node.log` (appended over restarts); when a test
 * fails the tail of every node's log is printed. Set FERRY_E2E_KEEP=1 to keep the temp dir.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, closeSync, openSync, writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeEach } from 'vitest';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FERRY_BIN = path.join(REPO_ROOT, 'bin', 'ferry.js');

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Device ID: 8 groups of 7 base32 characters. */
export const DEVICE_ID_RE = /\b[A-Z2-7]{7}(?:-[A-Z2-7]{7}){7}\b/;

/** Default time the tests wait for something that should take about a second. */
export const SYNC_TIMEOUT_MS = Number(process.env.FERRY_E2E_TIMEOUT_MS ?? 30_000);

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function uniqueText(label: string): string {
  return `${label} ${randomBytes(12).toString('hex')} ${new Date().toISOString()}\n`;
}

/** Writes `size` random bytes to `file` without holding them all in memory. */
export async function writeRandomFile(file: string, size: number): Promise<string> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const h = createHash('sha256');
  const fh = await fsp.open(file, 'w');
  try {
    let left = size;
    while (left > 0) {
      const n = Math.min(left, 4 * MiB);
      const buf = randomBytes(n);
      h.update(buf);
      await fh.write(buf, 0, n);
      left -= n;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Overwrites `length` bytes at `offset` with random data (size unchanged). Returns the new bytes. */
export async function overwriteRegion(file: string, offset: number, length: number): Promise<Buffer> {
  const buf = randomBytes(length);
  const fh = await fsp.open(file, 'r+');
  try {
    await fh.write(buf, 0, length, offset);
  } finally {
    await fh.close();
  }
  return buf;
}

export async function writeFile(file: string, data: string | Buffer, mode?: number): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, data);
  if (mode !== undefined) await fsp.chmod(file, mode);
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

export async function readIfExists(p: string): Promise<Buffer | undefined> {
  try {
    return await fsp.readFile(p);
  } catch {
    return undefined;
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Describes what is awaited, for the timeout error. */
  message?: string | (() => string | Promise<string>);
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned). Errors thrown by the
 * predicate count as "not yet"; the last one is reported on timeout.
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? SYNC_TIMEOUT_MS;
  const intervalMs = opts.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  let what = typeof opts.message === 'function' ? await opts.message() : (opts.message ?? 'condition');
  if (lastError) what += `\nlast error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function freePort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(1000, () => done(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Running the CLI

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command line, for messages. */
  command: string;
}

function childEnv(sandbox: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.FERRY_HOME;
  // Keep anything that falls back to the user's directories (like `~/Ferry`) inside the sandbox.
  env.HOME = sandbox;
  env.XDG_CONFIG_HOME = path.join(sandbox, '.config');
  delete env.NODE_OPTIONS;
  return env;
}

/** Runs `node bin/ferry.js --home HOME ...args` and returns its exit status and output. */
export function ferry(home: string, ...args: string[]): Promise<RunResult> {
  return runFerry(home, args);
}

export function runFerry(home: string, args: string[], opts: { timeoutMs?: number; sandbox?: string; input?: string } = {}): Promise<RunResult> {
  const fullArgs = [FERRY_BIN, '--home', home, ...args];
  const command = `ferry --home ${home} ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, fullArgs, {
      cwd: REPO_ROOT,
      env: childEnv(opts.sandbox ?? path.dirname(home)),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    child.stdin?.end(opts.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, command });
    });
  });
}

/** Like `ferry` but throws (with the output) unless the command exits 0. */
export async function ferryOk(home: string, ...args: string[]): Promise<RunResult> {
  const r = await ferry(home, ...args);
  if (r.code !== 0) throw new Error(describeRun(r, 'expected exit code 0'));
  return r;
}

export function describeRun(r: RunResult, why: string): string {
  return `${why}: \`${r.command}\` exited with ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Parses JSON printed by a command (the whole stdout, or failing that its last JSON line). */
export function parseJsonOutput<T = unknown>(r: RunResult, stream: 'stdout' | 'stderr' = 'stdout'): T {
  const text = r[stream].trim();
  try {
    return JSON.parse(text) as T;
  } catch {
    const lines = text.split('\n').filter((l) => l.trim().startsWith('{') || l.trim().startsWith('['));
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        return JSON.parse(lines[i]!) as T;
      } catch {
        /* try the previous line */
      }
    }
    throw new Error(describeRun(r, `output is not JSON (${stream})`));
  }
}

// ---------------------------------------------------------------------------------------------
// `ferry status --json`

export interface FolderStatus {
  id: string;
  path: string;
  state: 'scanning' | 'syncing' | 'idle' | 'error' | 'stopped' | 'paused';
  inSync: boolean;
  completion: number;
  needFiles: number;
  needBytes: number;
  localFiles: number;
  localBytes: number;
  sharedWith: string[];
  errors: { path: string; message: string }[];
  mode: 'send-receive' | 'send-only' | 'receive-only';
  notApplied: number;
  notSent: number;
}

export interface PeerStatus {
  deviceId: string;
  name?: string;
  addresses: string[];
  connected: boolean;
  address?: string | null;
  discoveredAddress?: string | null;
  lastSeen?: string | null;
  bytesIn: number;
  bytesOut: number;
  paused?: boolean;
  /** How far the peer has come with this node's state of each folder shared with it. */
  folders?: { id: string; indexKnown: boolean; upToDate: boolean; needFiles: number; needBytes: number }[];
}

export interface Status {
  deviceId: string;
  name: string;
  running: boolean;
  listen: string;
  folders: FolderStatus[];
  peers: PeerStatus[];
  conflicts: { folder: string; path: string }[];
  nearbyDevices: { deviceId: string; address: string; lastSeen: string }[];
}

export async function status(node: FerryNode | string): Promise<Status> {
  const home = typeof node === 'string' ? node : node.home;
  const r = await ferry(home, 'status', '--json');
  if (r.code !== 0) throw new Error(describeRun(r, 'ferry status --json failed'));
  return parseJsonOutput<Status>(r);
}

export function folderStatus(s: Status, folderId: string): FolderStatus | undefined {
  return s.folders?.find((f) => f.id === folderId);
}

export function peerStatus(s: Status, deviceId: string): PeerStatus | undefined {
  return s.peers?.find((p) => p.deviceId === deviceId);
}

/** Sum of bytesIn/bytesOut over all of a node's peers. */
export function byteCounters(s: Status): { bytesIn: number; bytesOut: number } {
  let bytesIn = 0;
  let bytesOut = 0;
  for (const p of s.peers ?? []) {
    bytesIn += Number(p.bytesIn ?? 0);
    bytesOut += Number(p.bytesOut ?? 0);
  }
  return { bytesIn, bytesOut };
}

/**
 * Byte counters of several nodes, read once the counters have stopped moving (a running node's
 * status may be up to a second old, and a transfer's tail may still be in flight).
 */
export async function settledCounters(nodes: FerryNode[], quietMs = 1500): Promise<Map<string, { bytesIn: number; bytesOut: number }>> {
  let prev = '';
  let result = new Map<string, { bytesIn: number; bytesOut: number }>();
  const deadline = Date.now() + 15_000;
  for (;;) {
    result = new Map();
    for (const n of nodes) result.set(n.name, byteCounters(await status(n)));
    // Small background traffic (keepalives) may keep moving: compare in units of 16 KiB.
    const coarse = JSON.stringify([...result].map(([k, v]) => [k, Math.round(v.bytesIn / 16384), Math.round(v.bytesOut / 16384)]));
    if (coarse === prev || Date.now() > deadline) return result;
    prev = coarse;
    await sleep(quietMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Nodes

export interface NodeOptions {
  /** Port to listen on (default: a free one picked now and kept over restarts). */
  port?: number;
}

export class FerryNode {
  readonly name: string;
  /** The node's own directory (home, folders, log live under it). */
  readonly dir: string;
  readonly home: string;
  readonly logPath: string;
  readonly port: number;
  /** UDP port of LAN discovery: one per cluster, so the nodes of a cluster find each other. */
  readonly discoveryPort: number;
  deviceId = '';
  proc: ChildProcess | undefined;
  private exitPromise: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Output of the last `ferry init`. */
  initOutput: RunResult | undefined;
  private starts = 0;

  constructor(name: string, dir: string, port: number, discoveryPort: number) {
    this.name = name;
    this.dir = dir;
    this.home = path.join(dir, 'home');
    this.logPath = path.join(dir, 'node.log');
    this.port = port;
    this.discoveryPort = discoveryPort;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.lastExit === undefined;
  }

  /** Where this node keeps the folder with this ID (created by `addFolder`). */
  folderPath(folderId: string): string {
    return path.join(this.dir, 'folders', folderId);
  }

  /** Path of a file inside one of this node's folders. */
  file(folderId: string, rel: string): string {
    return path.join(this.folderPath(folderId), ...rel.split('/'));
  }

  ferry(...args: string[]): Promise<RunResult> {
    return runFerry(this.home, args, { sandbox: this.dir });
  }

  async ferryOk(...args: string[]): Promise<RunResult> {
    const r = await this.ferry(...args);
    if (r.code !== 0) throw new Error(describeRun(r, `[${this.name}] expected exit code 0`));
    return r;
  }

  status(): Promise<Status> {
    return status(this);
  }

  async counters(): Promise<{ bytesIn: number; bytesOut: number }> {
    return byteCounters(await this.status());
  }

  async init(): Promise<string> {
    await fsp.mkdir(this.home, { recursive: true });
    const r = await this.ferryOk('init', '--name', this.name);
    this.initOutput = r;
    const m = DEVICE_ID_RE.exec(r.stdout);
    if (!m) throw new Error(describeRun(r, `[${this.name}] ferry init printed no device ID`));
    this.deviceId = m[0];
    return this.deviceId;
  }

  /** `ferry folder add PATH --id ID`, creating the directory first. */
  async addFolder(folderId: string): Promise<string> {
    const p = this.folderPath(folderId);
    await fsp.mkdir(p, { recursive: true });
    await this.ferryOk('folder', 'add', p, '--id', folderId);
    return p;
  }

  /**
   * `ferry peer add OTHER_ID 127.0.0.1:PORT --folder ID ... --name NAME`; with `discovered`,
   * no address (LAN discovery must find it).
   */
  async addPeer(other: FerryNode, folderIds: string[], opts: { deviceId?: string; discovered?: boolean } = {}): Promise<void> {
    const args = ['peer', 'add', opts.deviceId ?? other.deviceId, ...(opts.discovered ? [] : [other.address])];
    for (const f of folderIds) args.push('--folder', f);
    args.push('--name', other.name);
    await this.ferryOk(...args);
  }

  /**
   * Starts `ferry start --listen 127.0.0.1:PORT` and waits until it accepts connections.
   * `asProgram`: run bin/ferry.js itself (its shebang), as `ferry` and `npm start` do.
   * `netns`: run `ferry start` with its defaults (all addresses, port 22100, LAN discovery
   * on UDP 22100) inside that network namespace, and wait until its status says it runs.
   * `args`: more options for `ferry start`.
   */
  async start(opts: { asProgram?: boolean; netns?: string; args?: string[] } = {}): Promise<void> {
    if (this.running) throw new Error(`[${this.name}] already running`);
    this.starts++;
    const fd = openSync(this.logPath, 'a');
    writeSync(fd, `\n===== harness: start #${this.starts} of ${this.name} at ${new Date().toISOString()} =====\n`);
    const args = opts.netns
      ? ['netns', 'exec', opts.netns, process.execPath, FERRY_BIN, '--home', this.home, 'start']
      : ['--home', this.home, 'start', '--listen', this.address, '--discovery-port', String(this.discoveryPort), ...(opts.args ?? [])];
    const program = opts.netns ? 'ip' : opts.asProgram ? FERRY_BIN : process.execPath;
    const child = spawn(program, opts.netns || opts.asProgram ? args : [FERRY_BIN, ...args], {
      cwd: REPO_ROOT,
      env: childEnv(this.dir),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.proc = child;
    this.lastExit = undefined;
    liveChildren.add(child);
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        this.lastExit = { code, signal };
        resolve({ code, signal });
      });
      child.on('error', (err) => {
        liveChildren.delete(child);
        this.lastExit = { code: null, signal: null };
        void fsp.appendFile(this.logPath, `harness: spawn error ${err.message}\n`);
        resolve({ code: null, signal: null });
      });
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const exit = this.lastExit as { code: number | null; signal: NodeJS.Signals | null } | undefined;
      if (exit) {
        throw new Error(`[${this.name}] ferry start exited early (${exit.code ?? exit.signal})\n${await this.logTail(60)}`);
      }
      if (opts.netns ? (await this.status()).running : await canConnect(this.port)) return;
      if (Date.now() > deadline) {
        throw new Error(`[${this.name}] ferry start does not accept connections on ${this.address} after 20 s\n${await this.logTail(60)}`);
      }
      await sleep(100);
    }
  }

  /** SIGTERM and wait for the process to exit (throws if it does not within `timeoutMs`). */
  async stop(timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.proc || !this.exitPromise) throw new Error(`[${this.name}] not started`);
    if (this.lastExit) return this.lastExit;
    this.proc.kill('SIGTERM');
    const exited = await Promise.race([this.exitPromise, sleep(timeoutMs).then(() => undefined)]);
    if (!exited) {
      this.proc.kill('SIGKILL');
      await this.exitPromise;
      throw new Error(`[${this.name}] did not exit within ${timeoutMs} ms of SIGTERM (killed)`);
    }
    return exited;
  }

  /** kill -9 and wait for the exit. */
  async kill9(): Promise<void> {
    if (!this.proc || !this.exitPromise) throw new Error(`[${this.name}] not started`);
    if (this.lastExit) return;
    this.proc.kill('SIGKILL');
    await this.exitPromise;
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.start();
  }

  /** Best-effort stop for clean-up: SIGTERM, then SIGKILL after a few seconds. */
  async shutdown(): Promise<void> {
    if (!this.proc || !this.exitPromise || this.lastExit) return;
    this.proc.kill('SIGTERM');
    const exited = await Promise.race([this.exitPromise, sleep(5000).then(() => undefined)]);
    if (!exited) {
      this.proc.kill('SIGKILL');
      await this.exitPromise;
    }
  }

  async log(): Promise<string> {
    return (await readIfExists(this.logPath))?.toString('utf8') ?? '';
  }

  async logTail(lines = 200): Promise<string> {
    const text = await this.log();
    const all = text.split('\n');
    const tail = all.slice(-lines).join('\n');
    return `----- log of ${this.name} (${this.deviceId}, ${this.address}), last ${Math.min(lines, all.length)} of ${all.length} lines: ${this.logPath}\n${tail}`;
  }
}

const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------------
// A cluster: one temp dir, several nodes, logs on failure, clean-up

export class Cluster {
  readonly root: string;
  readonly nodes: FerryNode[] = [];
  private readonly ports: Set<number>;

  private constructor(root: string, ports: Set<number>, readonly discoveryPort: number) {
    this.root = root;
    this.ports = ports;
  }

  static async create(label: string): Promise<Cluster> {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), `ferry-e2e-${label}-`));
    const ports = new Set<number>();
    return new Cluster(root, ports, await freePort(ports));
  }

  /** A scratch directory inside the cluster's temp dir. */
  async scratch(name: string): Promise<string> {
    const p = path.join(this.root, 'scratch', name);
    await fsp.mkdir(p, { recursive: true });
    return p;
  }

  /** Creates a node directory and runs `ferry init --name NAME` (does not start it). */
  async createNode(name: string, opts: NodeOptions = {}): Promise<FerryNode> {
    const port = opts.port ?? (await freePort(this.ports));
    const node = new FerryNode(name, path.join(this.root, name), port, this.discoveryPort);
    this.nodes.push(node);
    await fsp.mkdir(node.dir, { recursive: true });
    await node.init();
    return node;
  }

  /** `ferry init --name NAME`, then `ferry start --listen 127.0.0.1:PORT`. */
  async startNode(name: string, opts: NodeOptions = {}): Promise<FerryNode> {
    const node = await this.createNode(name, opts);
    await node.start();
    return node;
  }

  async dumpLogs(lines = 200): Promise<string> {
    const parts: string[] = [];
    // Nodes that were never started have no log.
    for (const n of this.nodes) if (await exists(n.logPath)) parts.push(await n.logTail(lines));
    return parts.join('\n');
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.shutdown().catch(() => undefined)));
    if (process.env.FERRY_E2E_KEEP) {
      console.log(`FERRY_E2E_KEEP: kept ${this.root}`);
      return;
    }
    await fsp.rm(this.root, { recursive: true, force: true });
  }
}

/**
 * Creates a cluster for the current test file: created lazily, logs of every node printed when
 * a test fails, nodes stopped and the temp dir removed after all tests.
 */
export function useCluster(label: string): { get(): Cluster; ready: Promise<Cluster> } {
  let cluster: Cluster | undefined;
  const ready = Cluster.create(label).then((c) => (cluster = c));
  beforeEach(async (ctx) => {
    await ready;
    ctx.onTestFailed(async () => {
      if (!cluster) return;
      console.error(`\n===== node logs after failure of "${ctx.task.name}" =====\n${await cluster.dumpLogs()}`);
    });
  });
  afterAll(async () => {
    await ready;
    await cluster?.cleanup();
  });
  return {
    get() {
      if (!cluster) throw new Error('cluster not ready');
      return cluster;
    },
    ready,
  };
}

/** Runs `fn` and prints every node's log if it throws (for beforeAll set-up). */
export async function withLogsOnError<T>(cluster: Cluster, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    console.error(`\n===== node logs after set-up failure =====\n${await cluster.dumpLogs()}`);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Topologies

/** Adds the folder on every node and makes every pair of nodes peers sharing it. */
export async function connectMesh(nodes: FerryNode[], folderId: string): Promise<void> {
  for (const n of nodes) await n.addFolder(folderId);
  for (const a of nodes) {
    for (const b of nodes) {
      if (a !== b) await a.addPeer(b, [folderId]);
    }
  }
}

/** Adds the folder on every node; the hub knows every spoke, each spoke knows only the hub. */
export async function connectStar(hub: FerryNode, spokes: FerryNode[], folderId: string): Promise<void> {
  for (const n of [hub, ...spokes]) await n.addFolder(folderId);
  for (const s of spokes) {
    await hub.addPeer(s, [folderId]);
    await s.addPeer(hub, [folderId]);
  }
}

// ---------------------------------------------------------------------------------------------
// Tree snapshots

export interface Entry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** mode & 0o777 */
  mode: number;
  /** sha256 of the content (file), of the target (symlink), '' for a directory. */
  hash: string;
  size: number;
}

export type Snapshot = Record<string, Entry>;

const hashCache = new Map<string, string>();

/**
 * Sorted map of relative path ('/'-separated) → entry, skipping every name that starts with
 * `.ferry` (Ferry's own files) at any depth.
 */
/** undefined for an entry that vanished (ENOENT); any other error is rethrown. */
function ifVanished(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined;
  throw err;
}

export async function treeSnapshot(dir: string): Promise<Snapshot> {
  const out: [string, Entry][] = [];
  async function walk(abs: string, rel: string): Promise<void> {
    const names = (await fsp.readdir(abs).catch(ifVanished)) ?? [];
    for (const name of names) {
      if (name.startsWith('.ferry')) continue;
      const a = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      // A node may move or delete an entry while this walks: one that vanished is not listed.
      const st = await fsp.lstat(a, { bigint: true }).catch(ifVanished);
      if (!st) continue;
      const mode = Number(st.mode & 0o777n);
      if (st.isDirectory()) {
        out.push([r, { type: 'dir', mode, hash: '', size: 0 }]);
        await walk(a, r);
      } else if (st.isSymbolicLink()) {
        const target = await fsp.readlink(a).catch(ifVanished);
        if (target === undefined) continue;
        out.push([r, { type: 'symlink', mode: 0, hash: sha256(target), size: 0 }]);
      } else if (st.isFile()) {
        const key = `${a}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
        let hash = hashCache.get(key);
        if (!hash) {
          hash = await sha256File(a).catch(ifVanished);
          if (hash === undefined) continue;
          hashCache.set(key, hash);
        }
        out.push([r, { type: 'file', mode, hash, size: Number(st.size) }]);
      } else {
        out.push([r, { type: 'other', mode, hash: '', size: 0 }]);
      }
    }
  }
  await walk(dir, '');
  out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(out);
}

function describeEntry(e: Entry | undefined): string {
  if (!e) return 'absent';
  if (e.type === 'dir') return `dir ${e.mode.toString(8)}`;
  if (e.type === 'symlink') return `symlink ${e.hash.slice(0, 12)}`;
  return `${e.type} ${e.mode.toString(8)} ${e.size} B sha256 ${e.hash.slice(0, 12)}`;
}

/** Human-readable differences between two snapshots (at most `limit` lines). */
export function diffSnapshots(a: Snapshot, b: Snapshot, nameA = 'a', nameB = 'b', limit = 25): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const lines: string[] = [];
  let count = 0;
  for (const k of keys) {
    const ea = a[k];
    const eb = b[k];
    if (ea && eb && ea.type === eb.type && ea.mode === eb.mode && ea.hash === eb.hash) continue;
    count++;
    if (lines.length < limit) lines.push(`  ${JSON.stringify(k)}: ${nameA}=${describeEntry(ea)} | ${nameB}=${describeEntry(eb)}`);
  }
  if (count > limit) lines.push(`  … and ${count - limit} more`);
  return lines;
}

export function snapshotsEqual(a: Snapshot, b: Snapshot): boolean {
  return diffSnapshots(a, b, 'a', 'b', 1).length === 0;
}

export interface ConvergeOptions {
  timeoutMs?: number;
  /** Also require every node's status to say inSync for the folder (default true). */
  requireInSync?: boolean;
}

/**
 * Waits until every node's copy of the folder has the same tree (paths, types, modes, bytes,
 * link targets) and every node's `ferry status` says the folder is in sync. Returns the tree.
 * On timeout the error shows the differences and each node's folder status.
 */
export async function waitConverged(nodes: FerryNode[], folderId: string, opts: ConvergeOptions = {}): Promise<Snapshot> {
  const timeoutMs = opts.timeoutMs ?? SYNC_TIMEOUT_MS;
  const requireInSync = opts.requireInSync ?? true;
  const deadline = Date.now() + timeoutMs;
  let snaps: Snapshot[] = [];
  let statuses: (Status | Error)[] = [];
  let lastError: unknown;
  for (;;) {
    try {
      snaps = [];
      for (const n of nodes) snaps.push(await treeSnapshot(n.folderPath(folderId)));
      const equal = snaps.every((s) => snapshotsEqual(snaps[0]!, s));
      if (equal) {
        if (!requireInSync) return snaps[0]!;
        statuses = [];
        for (const n of nodes) statuses.push(await n.status().catch((e: Error) => e));
        const allInSync = statuses.every((s) => !(s instanceof Error) && folderStatus(s, folderId)?.inSync === true);
        // The trees may have changed while we asked for the statuses: check once more.
        if (allInSync) {
          const again = await Promise.all(nodes.map((n) => treeSnapshot(n.folderPath(folderId))));
          if (again.every((s) => snapshotsEqual(snaps[0]!, s))) return snaps[0]!;
        }
      } else {
        statuses = [];
      }
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) break;
    await sleep(300);
  }
  // Build a useful report.
  const report: string[] = [`folder ${JSON.stringify(folderId)} did not converge on ${nodes.map((n) => n.name).join(', ')} within ${timeoutMs} ms`];
  if (lastError) report.push(`last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  if (snaps.length === nodes.length) {
    for (let i = 1; i < nodes.length; i++) {
      const d = diffSnapshots(snaps[0]!, snaps[i]!, nodes[0]!.name, nodes[i]!.name);
      report.push(d.length ? `differences ${nodes[0]!.name} vs ${nodes[i]!.name}:\n${d.join('\n')}` : `${nodes[0]!.name} and ${nodes[i]!.name}: same tree`);
    }
  }
  if (statuses.length === 0) statuses = await Promise.all(nodes.map((n) => n.status().catch((e: Error) => e)));
  nodes.forEach((n, i) => {
    const s = statuses[i];
    if (s instanceof Error) report.push(`${n.name} status: ERROR ${s.message.split('\n')[0]}`);
    else if (s) {
      const f = folderStatus(s, folderId);
      report.push(
        `${n.name} status: running=${s.running} folder=${f ? JSON.stringify({ state: f.state, inSync: f.inSync, completion: f.completion, needFiles: f.needFiles, needBytes: f.needBytes, errors: f.errors }) : 'MISSING'} peers=${JSON.stringify((s.peers ?? []).map((p) => ({ name: p.name, connected: p.connected })))}`,
      );
    }
  });
  throw new Error(report.join('\n'));
}

/** Waits until `rel` in the node's folder has exactly these bytes. */
export async function waitForContent(node: FerryNode, folderId: string, rel: string, content: Buffer | string, timeoutMs = SYNC_TIMEOUT_MS): Promise<void> {
  const want = typeof content === 'string' ? Buffer.from(content) : content;
  const file = node.file(folderId, rel);
  await waitFor(async () => {
    const got = await readIfExists(file);
    return got !== undefined && got.equals(want);
  }, {
    timeoutMs,
    message: async () => {
      const got = await readIfExists(file);
      return `${node.name}:${folderId}/${rel} to have ${want.length} expected bytes (has ${got === undefined ? 'no file' : `${got.length} bytes, sha256 ${sha256(got).slice(0, 12)} vs expected ${sha256(want).slice(0, 12)}`})`;
    },
  });
}

/** Waits until `rel` is absent from the node's folder. */
export async function waitForAbsent(node: FerryNode, folderId: string, rel: string, timeoutMs = SYNC_TIMEOUT_MS): Promise<void> {
  await waitFor(async () => !(await exists(node.file(folderId, rel))), {
    timeoutMs,
    message: `${node.name}:${folderId}/${rel} to disappear`,
  });
}

/** All regular files under `dir` (recursively), with their sha256; [] when `dir` is absent. */
export async function filesWithHashes(dir: string): Promise<{ path: string; hash: string; size: number }[]> {
  const out: { path: string; hash: string; size: number }[] = [];
  async function walk(abs: string): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(abs);
    } catch {
      return;
    }
    for (const name of names) {
      const a = path.join(abs, name);
      const st = await fsp.lstat(a);
      if (st.isDirectory()) await walk(a);
      else if (st.isFile()) out.push({ path: a, hash: await sha256File(a), size: st.size });
    }
  }
  await walk(dir);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small disks (tests that run as root, as the CI does)

/** Mounts a tmpfs of `size` bytes at `dir` (made first); the caller unmounts it after stopping the nodes that use it. */
export async function mountSmallDisk(dir: string, size: number): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`cannot mount the ${size / MiB} MiB tmpfs this test needs at ${dir} (it must run as root): ${(err as { stderr?: Buffer }).stderr?.toString().trim() || String(err)}`);
  }
}

/** Writes `file` until its disk is full (not one more 64 KiB fits). */
export async function fillDisk(file: string): Promise<void> {
  const fh = await fsp.open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
}
