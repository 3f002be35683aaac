// The tools under comparison, each behind the same small interface:
//   kind          'copy' (cp), 'push' (rsync: one command does the sync), 'live' (a node pair
//                 that notices changes by itself: Ferry, Syncthing)
//   setup(folders, {single})   create homes/folders, start processes, wait until connected
//   src(folder) / dst(folder)  the directory changed on side A / the replica on side B
//   staging()                  a directory on the same file system as src, outside any folder
//   rssSides()                 {a: [pid...], b: [pid...]} roots of the process trees to sample
//   wireBytes()                cumulative bytes on the wire between the two sides (live tools)
//   teardown()                 stop everything it started
// Live tools also have kick(folder) (start whatever makes the tool look now: a REST scan for
// Syncthing, nothing for Ferry, whose watcher must find the change), isDone(folder) (the
// tool's own view that the peer has everything) and settle(folder, expect) (untimed: wait
// until the tool reports both sides idle and in sync before the next step).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { debug, freePort, log, now, run, sleep, startDaemon, stopProcess, until } from './util.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const mkdirp = (d) => fs.mkdirSync(d, { recursive: true });

// ---------------------------------------------------------------- cp

export class CpTool {
  name = 'cp'; kind = 'copy';
  constructor(root) { this.root = root; this.pid = null; }
  describe() { return '`cp` (file) / `cp -a` (tree) on the same file system, page cache warm: the floor'; }
  async setup(folders) { for (const { id: f } of folders) { mkdirp(this.src(f)); mkdirp(this.dst(f)); } }
  src(f) { return path.join(this.root, 'src', f); }
  dst(f) { return path.join(this.root, 'dst', f); }
  staging() { const d = path.join(this.root, 'staging'); mkdirp(d); return d; }
  rssSides() { return { a: this.pid ? [this.pid] : [] }; }
  async copy(args) {
    const t0 = now();
    await run('cp', args, { onSpawn: (c) => { this.pid = c.pid; } });
    return now() - t0;
  }
  async teardown() {}
}

// ---------------------------------------------------------------- rsync

export const RSYNC_FLAGS = ['-a', '--delete', '--stats', '--no-human-readable'];

export class RsyncTool {
  name = 'rsync'; kind = 'push';
  constructor(root) { this.root = root; this.daemon = null; this.clientPid = null; }
  describe() {
    return `\`rsync ${RSYNC_FLAGS.join(' ')} SRC/ rsync://127.0.0.1:PORT/bench/…/\` to an \`rsync --daemon\` with its own rsyncd.conf `
      + '(archive mode: perms, times, links; delta transfer; temp file + rename like the sync tools; no --inplace, no --checksum). '
      + 'Scenario 5 adds `--dry-run`. Wire bytes = "Total bytes sent" + "Total bytes received" from --stats.';
  }
  src(f) { return path.join(this.root, 'src', f); }
  dst(f) { return path.join(this.root, 'dst', f); }
  staging() { const d = path.join(this.root, 'staging'); mkdirp(d); return d; }
  async setup(folders) {
    for (const { id: f } of folders) { mkdirp(this.src(f)); mkdirp(this.dst(f)); }
    this.port = await freePort();
    const conf = path.join(this.root, 'rsyncd.conf');
    const asRoot = process.getuid?.() === 0;
    fs.writeFileSync(conf, [
      `port = ${this.port}`,
      'address = 127.0.0.1',
      `pid file = ${path.join(this.root, 'rsyncd.pid')}`,
      `log file = ${path.join(this.root, 'rsyncd.log')}`,
      'use chroot = no',
      'max connections = 4',
      '[bench]',
      `  path = ${path.join(this.root, 'dst')}`,
      '  read only = no',
      '  munge symlinks = no',
      ...(asRoot ? ['  uid = root', '  gid = root'] : []),
      '',
    ].join('\n'));
    this.daemon = startDaemon('rsyncd', 'rsync', ['--daemon', '--no-detach', `--config=${conf}`],
      { logFile: path.join(this.root, 'rsyncd.out') });
    await until(async () => (await run('rsync', [`rsync://127.0.0.1:${this.port}/`], { check: false, timeoutMs: 5000 })).code === 0,
      { timeoutMs: 15000, intervalMs: 100, what: 'the rsync daemon to accept connections' });
  }
  rssSides() { return { a: this.clientPid ? [this.clientPid] : [], b: this.daemon ? [this.daemon.pid] : [] }; }
  /** Runs one sync of folder f; returns {ms, wire}. */
  async sync(f, { dryRun = false } = {}) {
    const args = [...RSYNC_FLAGS, ...(dryRun ? ['--dry-run'] : []), `${this.src(f)}/`, `rsync://127.0.0.1:${this.port}/bench/${f}/`];
    const t0 = now();
    const res = await run('rsync', args, { onSpawn: (c) => { this.clientPid = c.pid; } });
    const ms = now() - t0;
    const num = (re) => { const m = re.exec(res.stdout); return m ? Number(m[1].replace(/[^0-9]/g, '')) : NaN; };
    const sent = num(/Total bytes sent:\s*([\d,.]+)/); const recv = num(/Total bytes received:\s*([\d,.]+)/);
    return { ms, wire: sent + recv, stats: res.stdout };
  }
  async teardown() { await stopProcess(this.daemon); this.daemon = null; }
}

// ---------------------------------------------------------------- Syncthing

export class SyncthingTool {
  name = 'syncthing'; kind = 'live';
  constructor(root, { watchDelayS = 10 } = {}) {
    this.root = root; this.watchDelayS = watchDelayS; this.nodes = []; this.kicks = new Map(); this.version = '';
  }
  describe() {
    return `Syncthing ${this.version || '1.19'} (Debian): two instances, own homes, \`serve --no-browser --no-restart --no-upgrade\`, `
      + 'GUI/REST on 127.0.0.1 with an API key from config.xml, sync listen tcp://127.0.0.1:PORT; global discovery, local announce, '
      + 'relays, NAT, usage reporting, crash reporting and auto-upgrade off; compression "metadata" (default); '
      + 'setLowPriority off, so that it runs at the same CPU priority as the other tools (its default renices itself to 11). '
      + 'Syncthing 1.19 runs as a monitor process plus the worker even with --no-restart; peak RSS counts both (the monitor is ~17 MiB). '
      + `Scenarios 1-3: watcher off, change announced with POST /rest/db/scan; scenario 4: watcher on, fsWatcherDelayS=${this.watchDelayS}`
      + `${this.watchDelayS === 10 ? ' (the default)' : ' (default is 10)'}; scenario 5: POST /rest/db/scan on one instance. `
      + 'Done = the file data is on B and A reports /rest/db/completion 100 % for B. '
      + 'Wire bytes = delta of /rest/system/connections inBytesTotal+outBytesTotal on B (BEP after compression, before TLS).';
  }
  src(f) { return path.join(this.root, 'a', f); }
  dst(f) { return path.join(this.root, 'b', f); }
  staging() { const d = path.join(this.root, 'a-staging'); mkdirp(d); return d; }

  async api(node, method, p, { timeoutMs = 600000 } = {}) {
    const res = await fetch(`http://127.0.0.1:${node.gui}${p}`, {
      method, headers: { 'X-API-Key': node.key }, signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Syncthing ${method} ${p}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : null;
  }

  /** folders: [{id, watch}] */
  async setup(folders, { single = false } = {}) {
    this.version = (await run('syncthing', ['--version'])).stdout.split(' ')[1] ?? '';
    const names = single ? ['a'] : ['a', 'b'];
    for (const n of names) {
      const home = path.join(this.root, `${n}-home`);
      mkdirp(home);
      const gen = await run('syncthing', ['generate', `--home=${home}`, '--no-default-folder'], { env: this.env() });
      const id = /Device ID:\s*(\S+)/.exec(gen.stdout + gen.stderr)?.[1];
      if (!id) throw new Error(`syncthing generate printed no device ID: ${gen.stdout}${gen.stderr}`);
      this.nodes.push({ n, home, id, gui: await freePort(), port: await freePort(), key: crypto.randomBytes(16).toString('hex') });
    }
    for (const node of this.nodes) {
      const peer = this.nodes.find((x) => x !== node);
      const devices = [node, ...(peer ? [peer] : [])];
      const folderXml = folders.map(({ id, watch }) => {
        const p = path.join(this.root, node.n, id);
        mkdirp(path.join(p, '.stfolder'));
        return `    <folder id="${id}" label="${id}" path="${p}" type="sendreceive" rescanIntervalS="3600" `
          + `fsWatcherEnabled="${watch ? 'true' : 'false'}" fsWatcherDelayS="${this.watchDelayS}" ignorePerms="false" autoNormalize="true">\n`
          + '        <filesystemType>basic</filesystemType>\n'
          + devices.map((d) => `        <device id="${d.id}" introducedBy=""></device>\n`).join('')
          + '        <minDiskFree unit="%">1</minDiskFree>\n'
          + '        <markerName>.stfolder</markerName>\n'
          + '    </folder>\n';
      }).join('');
      const deviceXml = devices.map((d) => `    <device id="${d.id}" name="${d.n}" compression="metadata" introducer="false">\n`
        + `        <address>${d === node ? 'dynamic' : `tcp://127.0.0.1:${d.port}`}</address>\n`
        + '        <autoAcceptFolders>false</autoAcceptFolders>\n'
        + '    </device>\n').join('');
      fs.writeFileSync(path.join(node.home, 'config.xml'), `<configuration version="36">\n${folderXml}${deviceXml}`
        + '    <gui enabled="true" tls="false" debugging="false">\n'
        + `        <address>127.0.0.1:${node.gui}</address>\n`
        + `        <apikey>${node.key}</apikey>\n`
        + '        <theme>default</theme>\n'
        + '    </gui>\n'
        + '    <options>\n'
        + `        <listenAddress>tcp://127.0.0.1:${node.port}</listenAddress>\n`
        + '        <globalAnnounceEnabled>false</globalAnnounceEnabled>\n'
        + '        <localAnnounceEnabled>false</localAnnounceEnabled>\n'
        + '        <relaysEnabled>false</relaysEnabled>\n'
        + '        <natEnabled>false</natEnabled>\n'
        + '        <startBrowser>false</startBrowser>\n'
        + '        <urAccepted>-1</urAccepted>\n'
        + '        <urSeen>3</urSeen>\n'
        + '        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>\n'
        + '        <crashReportingEnabled>false</crashReportingEnabled>\n'
        + '        <reconnectionIntervalS>5</reconnectionIntervalS>\n'
        + '        <announceLANAddresses>false</announceLANAddresses>\n'
        + '        <setLowPriority>false</setLowPriority>\n'
        + '    </options>\n'
        + '</configuration>\n');
    }
    for (const node of this.nodes) {
      node.proc = startDaemon(`syncthing-${node.n}`, 'syncthing',
        ['serve', `--home=${node.home}`, '--no-browser', '--no-restart', '--no-upgrade', '--no-default-folder', '--skip-port-probing', '--logflags=3'],
        { env: this.env(), logFile: path.join(this.root, `${node.n}.log`) });
    }
    for (const node of this.nodes) {
      await until(async () => {
        if (node.proc.exitCode !== null) throw new Error(`syncthing-${node.n} exited with ${node.proc.exitCode}; see ${this.root}/${node.n}.log`);
        return (await this.api(node, 'GET', '/rest/system/ping', { timeoutMs: 2000 }))?.ping === 'pong';
      }, { timeoutMs: 60000, intervalMs: 200, what: `syncthing-${node.n} REST API` });
    }
    if (!single) {
      const [a, b] = this.nodes;
      await until(async () => (await this.api(a, 'GET', '/rest/system/connections')).connections?.[b.id]?.connected,
        { timeoutMs: 60000, intervalMs: 200, what: 'the two Syncthing instances to connect' });
    }
    for (const { id } of folders) await this.waitIdle(id);
  }
  env() { return { ...process.env, STNORESTART: '1', STNOUPGRADE: '1', HOME: this.root }; }
  rssSides() { return Object.fromEntries(this.nodes.filter((n) => n.proc).map((n) => [n.n, [n.proc.pid]])); }

  async folderStatus(node, f) { return this.api(node, 'GET', `/rest/db/status?folder=${encodeURIComponent(f)}`); }
  /** Both instances idle for folder f, nothing needed. */
  async waitIdle(f, { timeoutMs = 600000, files } = {}) {
    await until(async () => {
      for (const node of this.nodes) {
        const s = await this.folderStatus(node, f);
        if (s.state !== 'idle' || s.needFiles || s.needBytes || s.needDeletes) return false;
        if (files !== undefined && s.localFiles !== files) return false;
      }
      return true;
    }, { timeoutMs, intervalMs: 100, what: `Syncthing folder ${f} to be idle on every instance` });
  }
  /** POST /rest/db/scan on A (returns when the scan is done); the promise is kept for isDone. */
  kick(f) {
    const p = this.api(this.nodes[0], 'POST', `/rest/db/scan?folder=${encodeURIComponent(f)}`);
    const entry = { done: false, error: null };
    entry.promise = p.then(() => { entry.done = true; }, (e) => { entry.done = true; entry.error = e; });
    this.kicks.set(f, entry);
  }
  async isDone(f) {
    const k = this.kicks.get(f);
    if (k) { if (k.error) throw k.error; if (!k.done) return false; }
    const [a, b] = this.nodes;
    const c = await this.api(a, 'GET', `/rest/db/completion?folder=${encodeURIComponent(f)}&device=${b.id}`);
    return c.completion === 100 && !c.needBytes && !c.needItems && !c.needDeletes;
  }
  async settle(f) {
    const k = this.kicks.get(f);
    if (k) { await k.promise; this.kicks.delete(f); if (k.error) throw k.error; }
    await this.waitIdle(f);
  }
  async wireBytes() {
    const [a, b] = this.nodes;
    const c = (await this.api(b, 'GET', '/rest/system/connections')).connections?.[a.id];
    return c ? c.inBytesTotal + c.outBytesTotal : NaN;
  }
  /** Scenario 5: a full scan of folder f on A; returns ms. */
  async rescan(f, { files } = {}) {
    const t0 = now();
    await this.api(this.nodes[0], 'POST', `/rest/db/scan?folder=${encodeURIComponent(f)}`);
    const s = await this.folderStatus(this.nodes[0], f);
    const ms = now() - t0;
    if (files !== undefined && s.localFiles !== files) throw new Error(`Syncthing reports ${s.localFiles} files in ${f} after the scan, expected ${files}`);
    return { ms };
  }
  async waitLocalFiles(f, files, timeoutMs) {
    await until(async () => { const s = await this.folderStatus(this.nodes[0], f); return s.state === 'idle' && s.localFiles === files; },
      { timeoutMs, intervalMs: 250, what: `Syncthing's initial scan of ${files} files` });
  }
  async teardown() {
    for (const node of this.nodes) { await stopProcess(node.proc, { timeoutMs: 15000 }); node.proc = null; }
    this.nodes = [];
  }
}

// ---------------------------------------------------------------- Ferry

const FERRY_BIN = path.join(REPO, 'bin', 'ferry.js');

/** The NAME=VALUE settings and node options in bin/ferry.js's `#!/usr/bin/env -S ... node ...` line. */
function ferryShebang() {
  const words = fs.readFileSync(FERRY_BIN, 'utf8').split('\n')[0].replace(/^#!\S*env\s+(-S\s+)?/, '').trim().split(/\s+/);
  const at = words.indexOf('node');
  if (at < 0) throw new Error(`bin/ferry.js: no \`node\` in its shebang: ${words.join(' ')}`);
  return { env: Object.fromEntries(words.slice(0, at).map((w) => w.split(/=(.*)/s).slice(0, 2))), nodeArgs: words.slice(at + 1) };
}

export class FerryTool {
  name = 'ferry'; kind = 'live';
  constructor(root, { settleTimeoutMs = 120000 } = {}) { this.root = root; this.nodes = []; this.settleTimeoutMs = settleTimeoutMs; this.problems = []; }
  describe() {
    return 'Ferry (this checkout): two nodes, own homes, `bin/ferry.js start --listen 127.0.0.1:PORT` (with the memory settings of its shebang), folders and peers set up '
      + 'with `folder add` / `peer add` before start. The change is only made on disk; Ferry\'s watcher must find it. '
      + 'Done = the file data is on B (polled on disk), then confirmed untimed with '
      + '`status --json` (inSync, needFiles 0). Wire bytes = delta of B\'s peers[].bytesIn+bytesOut from `status --json`.';
  }
  src(f) { return path.join(this.root, 'a', f); }
  dst(f) { return path.join(this.root, 'b', f); }
  staging() { const d = path.join(this.root, 'a-staging'); mkdirp(d); return d; }
  env() { return { ...process.env, HOME: this.root, XDG_CONFIG_HOME: path.join(this.root, 'xdg'), FERRY_HOME: path.join(this.root, 'no-such-home') }; }

  async cli(node, args, opts = {}) {
    return run(process.execPath, [FERRY_BIN, ...args, '--home', node.home], { cwd: REPO, env: this.env(), timeoutMs: 60000, ...opts });
  }
  async status(node) {
    const res = await this.cli(node, ['status', '--json']);
    try { return JSON.parse(res.stdout); } catch { throw new Error(`ferry status --json printed no JSON: ${res.stdout.slice(0, 300)}`); }
  }

  /** folders: [{id}] */
  async setup(folders, { single = false } = {}) {
    const names = single ? ['a'] : ['a', 'b'];
    for (const n of names) {
      const node = { n, home: path.join(this.root, `${n}-home`), port: await freePort() };
      mkdirp(node.home);
      await this.cli(node, ['init', '--name', `bench-${n}`]);
      const idOut = (await this.cli(node, ['id', '--json'])).stdout.trim();
      try { const j = JSON.parse(idOut); node.id = j.deviceId ?? j.id; } catch { node.id = idOut.split(/\s+/).pop(); }
      if (!node.id) throw new Error(`ferry id printed no device ID: ${idOut}`);
      for (const { id: f } of folders) {
        mkdirp(path.join(this.root, n, f));
        await this.cli(node, ['folder', 'add', path.join(this.root, n, f), '--id', f]);
      }
      this.nodes.push(node);
    }
    if (!single) {
      const [a, b] = this.nodes;
      const fl = folders.flatMap(({ id }) => ['--folder', id]);
      await this.cli(a, ['peer', 'add', b.id, `127.0.0.1:${b.port}`, ...fl, '--name', 'bench-b']);
      await this.cli(b, ['peer', 'add', a.id, `127.0.0.1:${a.port}`, ...fl, '--name', 'bench-a']);
    }
    for (const node of this.nodes) await this.startNode(node);
    if (!single) {
      const [a, b] = this.nodes;
      await until(async () => {
        for (const [x, y] of [[a, b], [b, a]]) {
          const s = await this.status(x);
          if (!s.peers?.find((p) => p.deviceId === y.id)?.connected) return false;
        }
        return true;
      }, { timeoutMs: 60000, intervalMs: 200, what: 'the two Ferry nodes to report each other connected in `ferry status --json`' });
    }
    for (const { id } of folders) await this.settle(id);
  }
  async startNode(node) {
    // With the environment and node options of bin/ferry.js's shebang, as when users run `ferry`.
    const { env, nodeArgs } = ferryShebang();
    // For investigations: PROF=DIR writes CPU profiles there; FERRY_NODE_ARGS adds node options (e.g. --trace-gc).
    const extra = [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.PROF] : []), ...(process.env.FERRY_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    node.proc = startDaemon(`ferry-${node.n}`, process.execPath, [...nodeArgs, ...extra, FERRY_BIN, 'start', '--listen', `127.0.0.1:${node.port}`, '--home', node.home],
      { cwd: REPO, env: { ...this.env(), ...env }, logFile: path.join(this.root, `${node.n}.log`) });
    await until(async () => {
      if (node.proc.exitCode !== null || node.proc.signalCode !== null) {
        throw new Error(`ferry start exited with ${node.proc.exitCode ?? node.proc.signalCode}: ${this.logTail(node)}`);
      }
      return (await this.status(node)).running === true;
    }, { timeoutMs: 60000, intervalMs: 100, what: `ferry-${node.n} to report running in \`ferry status --json\`` });
  }
  logTail(node, n = 1500) {
    try { return fs.readFileSync(path.join(this.root, `${node.n}.log`), 'utf8').slice(-n); } catch { return ''; }
  }
  rssSides() { return Object.fromEntries(this.nodes.filter((n) => n.proc).map((n) => [n.n, [n.proc.pid]])); }
  kick() {}
  async isDone() { return true; } // `status` is up to 1 s old; the end is detected on disk
  /** Untimed: both nodes report folder f idle and in sync (and B has `files` files if given). */
  async settle(f, { files, timeoutMs = this.settleTimeoutMs } = {}) {
    let last;
    try {
      await until(async () => {
        for (const node of this.nodes) {
          if (node.proc && (node.proc.exitCode !== null || node.proc.signalCode !== null)) {
            throw Object.assign(new Error(`ferry-${node.n} exited (${node.proc.exitCode ?? node.proc.signalCode}): ${this.logTail(node)}`), { fatal: true });
          }
          const s = await this.status(node);
          const fo = s.folders?.find((x) => x.id === f);
          last = `${node.n}: ${JSON.stringify(fo)}`;
          if (!fo || fo.state !== 'idle' || (this.nodes.length > 1 && !fo.inSync) || fo.needFiles) return false;
          if (files !== undefined && node === this.nodes[this.nodes.length - 1] && fo.localFiles !== files) return false;
        }
        return true;
      }, { timeoutMs, intervalMs: 200, what: `Ferry to report folder ${f} idle and in sync${files !== undefined ? ` with ${files} files` : ''}` });
    } catch (e) { throw new Error(`${e.message}; last status ${last}`); }
  }
  async wireBytes() {
    const [a, b] = this.nodes;
    const read = async () => {
      const p = (await this.status(b)).peers?.find((x) => x.deviceId === a.id);
      return p ? p.bytesIn + p.bytesOut : NaN;
    };
    // Late replies and index updates still move the counters after the data is on disk: read until two reads 1.1 s apart agree.
    let prev = await read();
    for (let i = 0; i < 5; i++) {
      await sleep(1100);
      const cur = await read();
      if (cur === prev) return cur;
      prev = cur;
    }
    return prev;
  }
  /**
   * Scenario 5: a full scan of folder f on node A, asked for as Syncthing's is (its REST call
   * from this process): POST /v1/rescan on the node's control socket, which answers when the
   * scan is done (what `ferry folder rescan` does).
   */
  async rescan(f, { files } = {}) {
    const node = this.nodes[0];
    const t0 = now();
    const { folders } = await controlRequest(path.join(node.home, 'control.sock'), `/v1/rescan?folder=${encodeURIComponent(f)}`);
    const ms = now() - t0;
    const scan = folders.find((x) => x.id === f);
    const notes = [];
    if (scan.hashed || scan.changed) notes.push(`hashed ${scan.hashed}, changed ${scan.changed}`);
    if (files !== undefined && scan.entries < files) notes.push(`the scan saw ${scan.entries} entries for ${files} files`);
    return { ms, note: notes.join('; '), ownMs: scan.ms };
  }
  async waitLocalFiles(f, files, timeoutMs) { await this.settle(f, { files, timeoutMs }); }
  /** Stops a node with SIGINT (the documented clean stop) and notes it if the exit was not clean. */
  async stopNode(node) {
    const proc = node.proc;
    if (!proc) return;
    await stopProcess(proc, { signal: 'SIGINT', timeoutMs: 30000 });
    node.proc = null;
    if (proc.exitCode !== 0) {
      const err = /\n(\w*Error[^\n]*)\n\s+at ([^\n]*)/.exec(this.logTail(node, 4000));
      this.problems.push(`\`ferry start\` exited with ${proc.exitCode ?? proc.signalCode} on SIGINT${err ? `: ${err[1]} at ${err[2].trim()}` : ''}`);
    }
  }
  async teardown() {
    for (const node of this.nodes) await this.stopNode(node);
    this.nodes = [];
  }
}

/** Is `node bin/ferry.js` usable yet? Returns null if so, else the reason. */
export async function ferryAvailable() {
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) return 'dist/cli/main.js does not exist (the CLI is not written or not built yet)';
  const res = await run(process.execPath, [FERRY_BIN, '--help'], { cwd: REPO, check: false, timeoutMs: 30000 });
  if (res.code !== 0) return `\`node bin/ferry.js --help\` exits with ${res.code}: ${(res.stderr || res.stdout).trim().split('\n').slice(-3).join(' ')}`;
  return null;
}

export function makeTool(name, root, opts) {
  switch (name) {
    case 'cp': return new CpTool(root);
    case 'rsync': return new RsyncTool(root);
    case 'syncthing': return new SyncthingTool(root, opts);
    case 'ferry': return new FerryTool(root, opts);
    default: throw new Error(`unknown tool ${name}`);
  }
}

export { debug, log };

/** POST to a Ferry node's control socket; resolves with the JSON answer. */
function controlRequest(socketPath, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'POST', path: urlPath }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`control socket answered ${res.statusCode}: ${body.slice(0, 300)}`));
        else resolve(JSON.parse(body));
      });
    });
    req.on('error', reject);
    req.end();
  });
}
