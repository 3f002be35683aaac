/**
 * The `ferry` command line: node set-up and control (init, start, id, folder, peer, status).
 * Configuration commands write to the node's database and work whether or not the node runs.
 */
import { Command } from 'commander';
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { basename, resolve } from 'node:path';
import { parseDeviceId } from '../core/device-id.js';
import { errorMessage, FerryError } from '../core/errors.js';
import { checkFolderId } from '../core/folder-id.js';
import { formatBytes } from '../core/format-bytes.js';
import { isInsideDir } from '../core/paths.js';
import { callNode, ControlSocket } from '../daemon/control-socket.js';
import { createLogger } from '../daemon/logger.js';
import type { ScanSummary } from '../engine/scanner.js';
import { FerryNode } from '../daemon/node.js';
import type { NodeRuntimeStatus } from '../daemon/node-status.js';
import { databasePath, defaultFolderPath, identityDir, resolveHome } from '../daemon/home.js';
import { checkMode, SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { formatHostPort, parseHostPort } from '../transport/address.js';
import { DEFAULT_DISCOVERY_PORT } from '../transport/lan-discovery.js';
import { loadIdentity, loadOrCreateIdentity } from '../transport/identity.js';
import { RemoteApi } from '../api/api-server.js';
import { registerAccountCommands } from './remote/account-commands.js';
import { registerRemoteCommands } from './remote/remote-commands.js';
import { failWith, printJson, printLine } from './output.js';
import { parseRate } from './parse-size.js';
import { printStatus, statusReport } from './status-command.js';
import { registerVersionCommands } from './versions-command.js';

const DEFAULT_LISTEN = '0.0.0.0:22100';
/** How long `status` waits for the running node's own answer before it shows what the node last published. */
const STATUS_ASK_MS = 2000;

interface GlobalOptions {
  home?: string;
  json?: boolean;
}

const program = new Command('ferry')
  .description('Ferry: your folders on all your devices, peer to peer, no cloud.')
  .option('--home <dir>', 'node home directory (default: $FERRY_HOME or ~/.config/ferry)')
  .option('--json', 'print machine-readable JSON')
  .showHelpAfterError();

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

/** Runs a command body with the home resolved and errors printed the Ferry way. */
function action<A extends unknown[]>(body: (home: string, json: boolean, ...args: A) => Promise<void> | void) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const { home, json } = globals(cmd);
    try {
      await body(resolveHome(home), !!json, ...(args.slice(0, -1) as A));
    } catch (err) {
      failWith(err, !!json);
    }
  };
}

function wholeNumber(text: string, option: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new FerryError('INVALID_CONFIG', `${option} must be a whole number of at least ${min}, not ${JSON.stringify(text)}`);
  return n;
}

function parsePort(text: string, option: string): number {
  const n = wholeNumber(text, option, 1);
  if (n > 65535) throw new FerryError('INVALID_CONFIG', `${option} must be a port number up to 65535, not ${JSON.stringify(text)}`);
  return n;
}

/** A peer address as stored: host:port, IPv6 literals in brackets. */
function canonicalAddress(address: string): string {
  const { host, port } = parseHostPort(address);
  return formatHostPort(host, port);
}

/** Runs `fn` with the node's index store open, and closes it whatever happens. */
async function withStore<T>(home: string, fn: (store: SqliteIndexStore) => T | Promise<T>): Promise<T> {
  const store = openStore(home);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

function openStore(home: string): SqliteIndexStore {
  if (!existsSync(identityDir(home))) {
    throw new FerryError('NOT_INITIALIZED', `no Ferry node in ${home}: run \`ferry init\` first`);
  }
  return SqliteIndexStore.open(databasePath(home));
}

async function initHome(home: string, name?: string) {
  const { identity, created } = await loadOrCreateIdentity(identityDir(home), name ?? hostname());
  const store = SqliteIndexStore.open(databasePath(home));
  if (name || !store.getMeta('name')) store.setMeta('name', name ?? hostname());
  return { identity, created, store };
}

program
  .command('init')
  .description('create this device identity and print its device ID')
  .option('--name <name>', 'a name for this device (default: the host name)')
  .action(
    action(async (home, json, opts: { name?: string }) => {
      const { identity, created, store } = await initHome(home, opts.name);
      store.close();
      if (json) printJson({ deviceId: identity.deviceId, created, home });
      else printLine(identity.deviceId);
    }),
  );

program
  .command('id')
  .description('print this device ID')
  .action(
    action(async (home, json) => {
      const identity = await loadIdentity(identityDir(home));
      if (json) printJson({ deviceId: identity.deviceId });
      else printLine(identity.deviceId);
    }),
  );

program
  .command('start')
  .description('run the node in the foreground until interrupted')
  .option('--listen <host:port>', 'address to listen on', DEFAULT_LISTEN)
  .option('--discovery-port <port>', 'UDP port of LAN discovery (the same on every device)', String(DEFAULT_DISCOVERY_PORT))
  .option('--no-discovery', 'neither announce this node on the LAN nor listen for others')
  .option('--max-send-rate <rate>', 'send file data to peers at most this fast, all together (500K, 2M a second), for this run (see `ferry limits`)')
  .option('--max-recv-rate <rate>', 'receive file data from peers at most this fast, all together, for this run')
  .action(
    action(async (home, json, opts: { listen: string; discoveryPort: string; discovery: boolean; maxSendRate?: string; maxRecvRate?: string }) => {
      const { host, port } = parseHostPort(opts.listen);
      const discoveryPort = opts.discovery ? parsePort(opts.discoveryPort, '--discovery-port') : undefined;
      const maxSendRate = opts.maxSendRate === undefined ? undefined : parseRate(opts.maxSendRate, '--max-send-rate');
      const maxReceiveRate = opts.maxRecvRate === undefined ? undefined : parseRate(opts.maxRecvRate, '--max-recv-rate');
      // A node runs for months: V8's default lets the heap grow to twice what a scan of a
      // large folder needs before collecting; this keeps the resident size near the live data.
      setFlagsFromString('--optimize-for-size');
      const fresh = !existsSync(identityDir(home));
      const { store } = await initHome(home);
      if (fresh && store.listFolders().length === 0) {
        store.addFolder('default', defaultFolderPath());
      }
      const name = store.getMeta('name') ?? 'ferry';
      store.close();
      const logger = createLogger(name);
      let node: FerryNode | undefined;
      const control = await ControlSocket.listen(home, {
        rescan: (ids) => {
          if (!node) throw new FerryError('NOT_RUNNING', 'the node is still starting (scanning its folders); try again in a moment');
          return node.rescan(ids);
        },
        status: () => {
          if (!node) throw new FerryError('NOT_RUNNING', 'the node is still starting (scanning its folders)');
          return node.runtimeStatus();
        },
        settle: (action, id) => {
          if (!node) throw new FerryError('NOT_RUNNING', 'the node is still starting (scanning its folders); try again in a moment');
          return node.settle(action, id);
        },
      }, logger);
      const api = RemoteApi.open({ databaseFile: databasePath(home), folderSync: (id) => node?.folderSync(id), logger: logger.child({ component: 'api' }) });
      node = await FerryNode.start({ home, host, port, discoveryPort, maxSendRate, maxReceiveRate, logger, handleRequest: (req, res, expectsContinue) => api.handle(req, res, expectsContinue) });
      if (json) printJson({ deviceId: node.deviceId, listen: node.address });
      else {
        printLine(`Ferry node ${node.name}`);
        printLine(`Device ID: ${node.deviceId}`);
        printLine(`Listening on ${node.address}`);
      }
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping');
        await node!.stop();
        api.close();
        await control?.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    }),
  );

program
  .command('limits')
  .description('show or set the rate limits of file data to and from all peers (a running node applies them at once)')
  .option('--send <rate>', 'send at most this fast (500K, 2M a second), or "off"')
  .option('--recv <rate>', 'receive at most this fast, or "off"')
  .option('--lan <on|off>', 'whether the limits hold for peers on the LAN too (default off: LAN peers sync at full speed)')
  .action(
    action(async (home, json, opts: { send?: string; recv?: string; lan?: string }) => {
      const rate = (text: string, option: string) => (text.trim().toLowerCase() === 'off' ? undefined : parseRate(text, option));
      const send = opts.send === undefined ? undefined : { value: rate(opts.send, '--send') };
      const receive = opts.recv === undefined ? undefined : { value: rate(opts.recv, '--recv') };
      const lan = opts.lan === undefined ? undefined : onOff(opts.lan, '--lan');
      const limits = await withStore(home, (store) => {
        if (send) store.setRateLimit('send', send.value);
        if (receive) store.setRateLimit('receive', receive.value);
        if (lan !== undefined) store.setLimitLan(lan);
        return store.getRateLimits();
      });
      if (json) return printJson({ maxSendRate: limits.send ?? null, maxReceiveRate: limits.receive ?? null, limitLan: limits.lan });
      const shown = (n: number | undefined) => (n ? `${formatBytes(n)}/s` : 'unlimited');
      printLine(`Send     ${shown(limits.send)}`);
      printLine(`Receive  ${shown(limits.receive)}`);
      printLine(`LAN      ${limits.lan ? 'limited too' : 'not limited (peers on the LAN sync at full speed)'}`);
    }),
  );

function onOff(text: string, option: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === 'on' || t === 'off') return t === 'on';
  throw new FerryError('INVALID_CONFIG', `${option} ${JSON.stringify(text)}: give on or off`);
}

const folder = program.command('folder').description('manage shared folders');

/** The rules every folder's directory must meet (`folder add`, `folder accept`). */
function checkFolderPath(home: string, abs: string): void {
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new FerryError('INVALID_PATH', `${abs} is not an existing directory`);
  }
  const homeDir = resolve(home);
  if (abs === homeDir || isInsideDir(abs, homeDir) || isInsideDir(homeDir, abs)) {
    throw new FerryError(
      'INVALID_PATH',
      `${abs} and Ferry's home ${homeDir} overlap: the home's database and keys must not be synced; share another directory or move the home (--home, FERRY_HOME)`,
    );
  }
}

/** Makes one directory (not its parents); returns its path. */
function makeDirectory(abs: string): string {
  try {
    mkdirSync(abs);
  } catch (err) {
    throw new FerryError('INVALID_PATH', `cannot create ${abs}: ${errorMessage(err)}`);
  }
  return abs;
}

function folderSettings(opts: { keepVersions: string; rescan: string; mode?: string }) {
  return {
    versionsKeepDays: wholeNumber(opts.keepVersions, '--keep-versions', 0),
    rescanSeconds: wholeNumber(opts.rescan, '--rescan', 1),
    ...(opts.mode === undefined ? {} : { mode: checkMode(opts.mode) }),
  };
}

const MODE_HELP = "send-receive (default); send-only: changes from peers are not applied here; receive-only: changes made here are not sent";

folder
  .command('add <path>')
  .description('share a local directory under a folder ID')
  .option('--id <id>', 'folder ID (default: the directory name); must match on every device')
  .option('--keep-versions <days>', 'days to keep replaced and deleted files in .ferry-versions/', '30')
  .option('--rescan <seconds>', 'full rescan interval (the file watcher catches changes in between)', '600')
  .option('--mode <mode>', MODE_HELP)
  .action(
    action(async (home, json, path: string, opts: { id?: string; keepVersions: string; rescan: string; mode?: string }) => {
      const settings = folderSettings(opts);
      const abs = resolve(path);
      checkFolderPath(home, abs);
      const id = checkFolderId(opts.id ?? basename(abs));
      await withStore(home, (store) => {
        const f = store.addFolder(id, abs, settings);
        if (json) printJson(f);
        else printLine(`Folder ${f.id} shares ${f.path}${f.mode === 'send-receive' ? '' : ` (${f.mode})`}`);
      });
    }),
  );

folder
  .command('accept <id> [path]')
  .description('accept a folder that peers offer (listed by `ferry status`): share it with them, kept in PATH if it is new here')
  .option('--keep-versions <days>', 'days to keep replaced and deleted files in .ferry-versions/', '30')
  .option('--rescan <seconds>', 'full rescan interval (the file watcher catches changes in between)', '600')
  .action(
    action(async (home, json, rawId: string, path: string | undefined, opts: { keepVersions: string; rescan: string }) => {
      const settings = folderSettings(opts);
      const id = checkFolderId(rawId);
      await withStore(home, (store) => {
        const offers = store.listPendingFolders({ declined: true }).filter((o) => o.folderId === id);
        if (offers.length === 0) {
          throw new FerryError('UNKNOWN_FOLDER', `no peer offers a folder ${id} (\`ferry status\` lists the offers of peers that connected)`);
        }
        const existing = store.getFolder(id);
        const abs = existing ? existing.path : resolve(path ?? '');
        if (!existing && path === undefined) {
          throw new FerryError('INVALID_CONFIG', `folder ${id} is new here: give the directory to keep it in (ferry folder accept ${id} PATH)`);
        }
        if (existing && path !== undefined && resolve(path) !== existing.path) {
          throw new FerryError('INVALID_CONFIG', `folder ${id} is already kept in ${existing.path} here`);
        }
        // A new directory is made for it (its parent must exist), and removed again if the folder is refused.
        const made = !existing && !existsSync(abs) ? makeDirectory(abs) : undefined;
        try {
          if (!existing) checkFolderPath(home, abs);
          store.transaction(() => {
            if (!existing) store.addFolder(id, abs, settings);
            for (const o of offers) store.shareFolder(id, o.deviceId);
          });
        } catch (err) {
          if (made) rmdirSync(made);
          throw err;
        }
        const devices = offers.map((o) => o.deviceId);
        if (json) printJson({ ...store.getFolder(id)!, accepted: devices });
        else printLine(`Folder ${id} in ${abs}, shared with ${devices.join(', ')}`);
      });
    }),
  );

folder
  .command('decline <id>')
  .description('decline a folder that peers offer: it is no longer listed (`folder accept` still takes it)')
  .action(
    action(async (home, json, rawId: string) => {
      const id = checkFolderId(rawId);
      await withStore(home, (store) => {
        if (store.declinePendingFolder(id) === 0) throw new FerryError('UNKNOWN_FOLDER', `no peer offers a folder ${id}`);
      });
      if (json) printJson({ declined: id });
      else printLine(`Folder ${id} declined; its offers are no longer listed.`);
    }),
  );

folder
  .command('list')
  .description('list shared folders')
  .action(
    action(async (home, json) => {
      const folders = await withStore(home, (store) => store.listFolders());
      if (json) return printJson(folders);
      for (const f of folders) printLine(`${f.id}\t${f.path}\t${f.devices.length} device(s)\t${f.mode}${f.paused ? '\tpaused' : ''}`);
    }),
  );

folder
  .command('remove <id>')
  .description('stop sharing a folder (its files stay on disk)')
  .action(
    action(async (home, json, id: string) => {
      await withStore(home, (store) => store.removeFolder(id));
      if (json) printJson({ removed: id });
      else printLine(`Folder ${id} removed; its files stay where they are.`);
    }),
  );

folder
  .command('set <id>')
  .description("change a folder's settings (a running node applies them at once)")
  .option('--keep-versions <days>', 'days to keep replaced and deleted files in .ferry-versions/')
  .option('--rescan <seconds>', 'full rescan interval')
  .option('--mode <mode>', MODE_HELP)
  .action(
    action(async (home, json, id: string, opts: { keepVersions?: string; rescan?: string; mode?: string }) => {
      if (opts.keepVersions === undefined && opts.rescan === undefined && opts.mode === undefined) {
        throw new FerryError('INVALID_CONFIG', 'nothing to change: give --keep-versions, --rescan and/or --mode');
      }
      const settings = {
        ...(opts.keepVersions === undefined ? {} : { versionsKeepDays: wholeNumber(opts.keepVersions, '--keep-versions', 0) }),
        ...(opts.rescan === undefined ? {} : { rescanSeconds: wholeNumber(opts.rescan, '--rescan', 1) }),
        ...(opts.mode === undefined ? {} : { mode: checkMode(opts.mode) }),
      };
      await withStore(home, (store) => {
        const f = store.updateFolder(id, settings);
        if (json) printJson(f);
        else printLine(`Folder ${f.id}: ${f.mode}, versions kept ${f.versionsKeepDays} day(s), full rescan every ${f.rescanSeconds} s`);
      });
    }),
  );

for (const [verb, description, done] of [
  ['override', "send-only folder: make this device's copy win over every change peers made (a file this device lacks is deleted on them, into their version areas)", "now win over the peers' changes"],
  ['revert', "receive-only folder: throw away the changes made here and take the peers' copy back (what is replaced or was only made here goes to the version area)", 'were reverted'],
] as const) {
  folder
    .command(`${verb} <id>`)
    .description(`${description}; on the running node`)
    .action(
      action(async (home, json, id: string) => {
        const { paths } = await callNode<{ paths: string[] }>(home, 'POST', `/v1/${verb}?folder=${encodeURIComponent(id)}`);
        if (json) return printJson({ folder: id, paths });
        printLine(paths.length === 0 ? `Nothing to ${verb} in ${id}` : `${paths.length} path(s) of ${id} ${done}:`);
        for (const p of paths) printLine(`  ${p}`);
      }),
    );
}

for (const [verb, paused] of [['pause', true], ['resume', false]] as const) {
  folder
    .command(`${verb} <id>`)
    .description(paused ? 'stop syncing a folder until it is resumed (nothing is scanned, pulled or offered)' : 'sync a paused folder again')
    .action(
      action(async (home, json, id: string) => {
        const f = await withStore(home, (store) => store.updateFolder(id, { paused }));
        if (json) printJson(f);
        else printLine(`Folder ${f.id} ${paused ? 'paused' : 'resumed'}`);
      }),
    );
}

folder
  .command('rescan [ids...]')
  .description('scan folders (all when none given) for changes now, on the running node')
  .action(
    action(async (home, json, ids: string[]) => {
      const { folders } = await callNode<{ folders: ({ id: string } & ScanSummary)[] }>(home, 'POST', `/v1/rescan${ids.length ? '?' : ''}${ids.map((id) => `folder=${encodeURIComponent(id)}`).join('&')}`);
      if (json) return printJson(folders);
      for (const f of folders) {
        printLine(`${f.id}: ${f.entries.toLocaleString('en')} entries checked, ${f.hashed} hashed, ${f.changed} changed, ${f.errors} error(s), ${(f.ms / 1000).toFixed(2)} s`);
      }
    }),
  );

const peer = program.command('peer').description('manage peer devices');

peer
  .command('add <deviceId> [address]')
  .description('introduce a peer device and share folders with it (without an address it is found by LAN discovery)')
  .option('--folder <id...>', 'folder(s) to share with the peer')
  .option('--name <name>', 'a name for the peer')
  .action(
    action(async (home, json, rawId: string, address: string | undefined, opts: { folder?: string[]; name?: string }) => {
      const deviceId = parseDeviceId(rawId);
      const addresses = address === undefined ? [] : [canonicalAddress(address)];
      await withStore(home, async (store) => {
        const self = await loadIdentity(identityDir(home));
        if (self.deviceId === deviceId) throw new FerryError('INVALID_CONFIG', 'that is this device own ID');
        for (const f of opts.folder ?? []) {
          if (!store.getFolder(f)) throw new FerryError('UNKNOWN_FOLDER', `no folder ${f} (see \`ferry folder list\`)`);
        }
        const p = store.transaction(() => {
          const added = store.upsertPeer(deviceId, addresses, opts.name);
          for (const f of opts.folder ?? []) store.shareFolder(f, deviceId);
          return added;
        });
        if (json) printJson({ ...p, folders: opts.folder ?? [] });
        else printLine(`Peer ${p.deviceId} at ${p.addresses.join(', ') || 'the address LAN discovery finds'}${opts.folder?.length ? `, sharing ${opts.folder.join(', ')}` : ''}`);
      });
    }),
  );

peer
  .command('list')
  .description('list peer devices')
  .action(
    action(async (home, json) => {
      const [peers, folders] = await withStore(home, (store) => [store.listPeers(), store.listFolders()] as const);
      const out = peers.map((p) => ({ ...p, folders: folders.filter((f) => f.devices.includes(p.deviceId)).map((f) => f.id) }));
      if (json) return printJson(out);
      for (const p of out) printLine(`${p.deviceId}\t${p.name}\t${p.addresses.join(',')}\t${p.folders.join(',')}${p.paused ? '\tpaused' : ''}`);
    }),
  );

peer
  .command('remove <deviceId>')
  .description('forget a peer device')
  .action(
    action(async (home, json, rawId: string) => {
      const deviceId = parseDeviceId(rawId);
      await withStore(home, (store) => store.removePeer(deviceId));
      if (json) printJson({ removed: deviceId });
      else printLine(`Peer ${deviceId} removed.`);
    }),
  );

for (const [verb, paused] of [['pause', true], ['resume', false]] as const) {
  peer
    .command(`${verb} <deviceId>`)
    .description(paused ? 'stop syncing with a peer until it is resumed (it is disconnected, not dialed and not let in)' : 'sync with a paused peer again')
    .action(
      action(async (home, json, rawId: string) => {
        const p = await withStore(home, (store) => store.setPeerPaused(parseDeviceId(rawId), paused));
        if (json) printJson(p);
        else printLine(`Peer ${p.deviceId} ${paused ? 'paused' : 'resumed'}`);
      }),
    );
}

program
  .command('status')
  .description('folders, peers and conflicts')
  .action(
    action(async (home, json) => {
      const identity = await loadIdentity(identityDir(home));
      // Live from the running node when it answers; else what it last published to the index.
      const live = await callNode<NodeRuntimeStatus>(home, 'GET', '/v1/status', STATUS_ASK_MS).catch(() => undefined);
      await withStore(home, (store) => printStatus(statusReport(store, identity.deviceId, live), json));
    }),
  );

registerVersionCommands(program, action, withStore);
registerAccountCommands(program, action, openStore);
registerRemoteCommands(program);

await program.parseAsync(process.argv);
