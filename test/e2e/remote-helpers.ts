/**
 * What the remote-access e2e tests share: a node with users made by `ferry user add`, the CLI
 * run with its output checked, a loopback proxy that counts the bytes a client sends, a large
 * file written without holding it in memory, and the peak memory of a node process.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { describeRun, MiB, parseJsonOutput, runFerry, type Cluster, type FerryNode, type RunResult } from './harness.js';

export const ALICE_PASSWORD = 'alice-secret-password';

/** Runs the remote CLI in a sandbox directory. */
export class RemoteCli {
  constructor(private readonly sandbox: string) {}

  run(home: string, args: string[], input?: string, timeoutMs = 120_000): Promise<RunResult> {
    return runFerry(home, args, { input, sandbox: this.sandbox, timeoutMs });
  }

  async ok(home: string, args: string[], input?: string, timeoutMs?: number): Promise<RunResult> {
    const r = await this.run(home, args, input, timeoutMs);
    if (r.code !== 0) throw new Error(describeRun(r, 'expected exit code 0'));
    return r;
  }

  async json<T>(home: string, args: string[], timeoutMs?: number): Promise<T> {
    return parseJsonOutput<T>(await this.ok(home, [...args, '--json'], undefined, timeoutMs));
  }
}

/** The `{"error":{code,message}}` of a failed --json command. */
export function errorOf(r: RunResult): { code: string; message: string } {
  const v = parseJsonOutput<{ error?: { code: string; message: string } }>(r, 'stderr');
  if (!v.error) throw new Error(describeRun(r, 'no JSON error on stderr'));
  return v.error;
}

export interface RemoteNode {
  readonly node: FerryNode;
  readonly cli: RemoteCli;
  readonly scratch: string;
  /** The CLI home of user alice (read-write on every folder), logged in. */
  readonly alice: string;
  url(): string;
}

/**
 * A started node with `folders`, user alice with read-write access to them, logged in from
 * her own CLI home. `prepare` runs after `ferry init` and before the folders are added.
 */
export async function startRemoteNode(c: Cluster, label: string, folders: string[], prepare?: (node: FerryNode) => Promise<void>): Promise<RemoteNode> {
  const scratch = await c.scratch(label);
  const cli = new RemoteCli(scratch);
  const node = await c.createNode(label);
  await prepare?.(node);
  for (const f of folders) await node.addFolder(f);
  await cli.ok(node.home, ['user', 'add', 'alice', '--folder', ...folders, '--password-stdin'], `${ALICE_PASSWORD}\n`);
  await node.start();
  const url = () => `https://127.0.0.1:${node.port}`;
  const alice = path.join(scratch, 'alice');
  await cli.ok(alice, ['login', url(), '--user', 'alice', '--password-stdin'], `${ALICE_PASSWORD}\n`);
  return { node, cli, scratch, alice, url };
}

/** A TCP relay to a local port that counts the bytes each client connection sends. */
export interface CountingProxy {
  readonly port: number;
  /** Bytes sent by each client connection, in the order they were opened. */
  readonly sentPerConnection: number[];
  close(): Promise<void>;
}

export async function countingProxy(targetPort: number): Promise<CountingProxy> {
  const sentPerConnection: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const i = sentPerConnection.push(0) - 1;
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d: Buffer) => (sentPerConnection[i]! += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sentPerConnection,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Writes `size` bytes without holding them in memory: one random MiB, repeated with every 4 KiB
 * page stamped with its MiB and page number, so no two blocks of the file are alike. Returns
 * the SHA-256.
 */
export async function writeStampedFile(file: string, size: number): Promise<string> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const page = 4096;
  const buf = randomBytes(MiB);
  const h = createHash('sha256');
  const fh = await fsp.open(file, 'w');
  try {
    for (let mib = 0, left = size; left > 0; mib++) {
      for (let p = 0; p < MiB / page; p++) {
        buf.writeUInt32LE(mib, p * page);
        buf.writeUInt32LE(p, p * page + 4);
      }
      const n = Math.min(left, MiB);
      h.update(buf.subarray(0, n));
      await fh.write(buf, 0, n);
      left -= n;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** The peak resident memory of a process (VmHWM), in bytes. */
export async function peakRss(pid: number): Promise<number> {
  const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
