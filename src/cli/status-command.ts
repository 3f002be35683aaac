/**
 * `ferry status`: configuration from the index, live state from the running node (asked on its
 * control socket, else what it last published to the index; "stopped" when no node has
 * published for a few seconds).
 */
import type { FolderStatus } from '../engine/folder-sync.js';
import type { ScanProgress } from '../engine/scanner.js';
import type { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { STALE_AFTER_MS, STATUS_KEY, type NodeRuntimeStatus } from '../daemon/node-status.js';
import { shortDeviceId } from '../core/device-id.js';
import { formatBytes } from '../core/format-bytes.js';
import { printJson, printLine } from './output.js';

/** `live`: the running node's own answer, when it gave one. */
export function statusReport(store: SqliteIndexStore, deviceId: string, live?: NodeRuntimeStatus) {
  const published = live ?? store.getStatus<NodeRuntimeStatus>(STATUS_KEY)?.value;
  const running = !!live || (!!published?.running && Date.now() - published.heartbeat < STALE_AFTER_MS && pidAlive(published.pid));
  const configs = store.listFolders();
  const folders = configs.map((f) => {
    const live: FolderStatus | undefined = running && !f.paused ? published!.folders[f.id] : undefined;
    const counts = store.localCounts(f.id);
    return {
      id: f.id,
      path: f.path,
      state: f.paused ? 'paused' : (live?.state ?? 'stopped'),
      // The mode in effect: a running node applies a change within a second.
      mode: live?.mode ?? f.mode,
      inSync: live ? live.needFiles === 0 && live.errors.length === 0 && live.state === 'idle' && !live.notApplied && !live.notSent : false,
      notApplied: live?.notApplied ?? 0,
      notSent: live?.notSent ?? 0,
      completion: live?.completion ?? 0,
      needFiles: live?.needFiles ?? 0,
      needBytes: live?.needBytes ?? 0,
      localFiles: counts.files,
      localBytes: counts.bytes,
      sharedWith: f.devices,
      errors: live?.errors ?? [],
      conflicts: live?.conflicts ?? [],
      scan: live?.scan ?? null,
    };
  });
  const ownShortId = shortDeviceId(deviceId);
  const peers = store.listPeers().map((p) => {
    const live = published?.peers[p.deviceId];
    // How far the peer has come with this device's state of each folder shared with it.
    const shared = configs.filter((f) => f.devices.includes(p.deviceId));
    const progress = shared.map((f) => {
      const lacks = store.peerLacks(f.id, p.deviceId, f.mode === 'receive-only' ? ownShortId : undefined);
      return { id: f.id, indexKnown: !!lacks, upToDate: lacks?.files === 0, needFiles: lacks?.files ?? 0, needBytes: lacks?.bytes ?? 0 };
    });
    return {
      deviceId: p.deviceId,
      name: p.name,
      addresses: p.addresses,
      paused: p.paused,
      connected: running && !!live?.connected,
      address: running && live?.connected ? live.address : undefined,
      discoveredAddress: running ? live?.discoveredAddress : undefined,
      lastSeen: live?.lastSeen ?? null,
      bytesIn: live?.bytesIn ?? 0,
      bytesOut: live?.bytesOut ?? 0,
      folders: progress,
    };
  });
  return {
    deviceId,
    name: store.getMeta('name') ?? '',
    running,
    listen: running ? published!.listen : null,
    maxSendRate: running ? (published!.maxSendRate ?? null) : null,
    maxReceiveRate: running ? (published!.maxReceiveRate ?? null) : null,
    limitLan: running ? (published!.limitLan ?? false) : null,
    folders: folders.map(({ conflicts: _c, ...f }) => f),
    peers,
    conflicts: folders.flatMap((f) => f.conflicts.map((path) => ({ folder: f.id, path }))),
    // A device refused before it was added (or while the node was starting) is no longer pending.
    pendingDevices: store.listPendingDevices().filter((d) => !peers.some((p) => p.deviceId === d.deviceId)),
    pendingFolders: store.listPendingFolders(),
    nearbyDevices: running ? (published!.nearby ?? []) : [],
  };
}

export function printStatus(report: ReturnType<typeof statusReport>, json: boolean): void {
  if (json) return printJson(report);
  printLine(`Device   ${report.deviceId}${report.name ? ` (${report.name})` : ''}`);
  printLine(`Node     ${report.running ? `running, listening on ${report.listen}` : 'not running'}`);
  if (report.maxSendRate || report.maxReceiveRate) {
    const rate = (n: number | null) => (n ? `${formatBytes(n)}/s` : 'unlimited');
    printLine(`Rates    send ${rate(report.maxSendRate)}, receive ${rate(report.maxReceiveRate)} (file data, all peers together${report.limitLan ? ', LAN peers too' : '; LAN peers not limited'})`);
  }
  printLine('Folders');
  if (report.folders.length === 0) printLine('  (none: add one with `ferry folder add PATH`)');
  for (const f of report.folders) {
    const state = f.inSync
      ? 'in sync'
      : f.scan
        ? `scanning ${scanPercent(f.scan)}% (${f.scan.hashedFiles} of ${f.scan.filesToHash} files, ${formatBytes(f.scan.bytesToHash - f.scan.hashedBytes)} left to hash)`
      : f.state === 'syncing' || f.needFiles > 0
        ? `syncing ${f.completion}% (${f.needFiles} files, ${formatBytes(f.needBytes)} left)`
        : f.state;
    const mode = f.mode === 'send-receive' ? '' : `  (${f.mode})`;
    printLine(`  ${f.id}  ${f.path}  ${state}  [${f.localFiles} files, ${formatBytes(f.localBytes)}]${mode}`);
    if (f.notApplied) printLine(`    ${f.notApplied} change(s) from peers not applied here (\`ferry folder override ${f.id}\` makes this device's copy win)`);
    if (f.notSent) printLine(`    ${f.notSent} change(s) made here not sent to peers (\`ferry folder revert ${f.id}\` takes the peers' copy back)`);
    for (const e of f.errors.slice(0, 10)) printLine(`    error: ${e.path}: ${e.message}`);
  }
  printLine('Peers');
  if (report.peers.length === 0) printLine('  (none: add one with `ferry peer add DEVICE_ID [HOST:PORT] --folder ID`)');
  for (const p of report.peers) {
    const where = p.addresses.length || p.discoveredAddress ? '' : ' (address not known yet: waiting for LAN discovery or for it to connect)';
    const conn = p.paused ? 'paused (`ferry peer resume` syncs with it again)' : p.connected ? `connected ${p.address}` : `disconnected${p.lastSeen ? `, last seen ${p.lastSeen}` : ''}${where}`;
    printLine(`  ${p.deviceId.slice(0, 7)}${p.name ? ` (${p.name})` : ''}  ${conn}  in ${formatBytes(p.bytesIn)}  out ${formatBytes(p.bytesOut)}`);
    for (const f of p.folders) {
      const where = !f.indexKnown ? 'has not sent its index yet' : f.upToDate ? 'has everything this device has' : `lacks ${f.needFiles} item(s) (${formatBytes(f.needBytes)}) of this device's`;
      printLine(`    ${f.id}: ${where}`);
    }
  }
  if (report.conflicts.length) {
    printLine('Conflicts');
    for (const c of report.conflicts) printLine(`  ${c.folder}/${c.path}`);
  }
  if (report.pendingDevices.length) {
    printLine('Devices asking to connect (add with `ferry peer add`)');
    for (const d of report.pendingDevices) printLine(`  ${d.deviceId} from ${d.address} at ${d.lastSeen}`);
  }
  if (report.pendingFolders.length) {
    printLine('Folders offered by peers (accept with `ferry folder accept ID PATH`)');
    for (const f of report.pendingFolders) printLine(`  ${f.folderId} from ${f.deviceId.slice(0, 7)} at ${f.lastSeen}`);
  }
  if (report.nearbyDevices.length) {
    printLine('Nearby devices on the LAN (add with `ferry peer add DEVICE_ID`)');
    for (const d of report.nearbyDevices) printLine(`  ${d.deviceId} at ${d.address}`);
  }
}

function scanPercent(p: ScanProgress): number {
  return p.bytesToHash > 0 ? Math.floor((100 * p.hashedBytes) / p.bytesToHash) : Math.floor((100 * p.hashedFiles) / p.filesToHash);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
