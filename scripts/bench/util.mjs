// Shared helpers for the benchmark: child-process registry (everything we start is
// stopped on exit, failure or SIGINT), loopback ports, RSS sampling, data generation
// and file-system checks. Plain Node ESM, no dependencies.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

export const MiB = 1 << 20;
export const GiB = 1 << 30;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.now();

let verbose = false;
export function setVerbose(v) { verbose = v; }
export function log(...a) { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`); }
export function debug(...a) { if (verbose) log(...a); }

// ---------------------------------------------------------------- processes

/** Every child we started and that may still be running: pid -> {child, name, group}. */
const children = new Map();

/**
 * Starts a long-running process in its own process group (so a terminal ^C does not reach
 * it before we stop it cleanly), stdout/stderr appended to logFile.
 */
export function startDaemon(name, cmd, args, { cwd, env, logFile } = {}) {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['ignore', out, out], detached: true });
  if (typeof out === 'number') fs.closeSync(out);
  if (!child.pid) throw new Error(`could not start ${name} (${cmd})`);
  const entry = { child, name, group: true, exited: false, code: null, signal: null };
  children.set(child.pid, entry);
  child.exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    entry.exited = true; entry.code = code; entry.signal = signal;
    children.delete(child.pid);
    resolve({ code, signal });
  }));
  child.on('error', () => {});
  debug(`started ${name} pid ${child.pid}: ${cmd} ${args.join(' ')}`);
  return child;
}

/** Pids of all descendants of pid (from /proc). */
export function descendantPids(pid) {
  const table = processTable();
  const set = descendants([pid], table);
  set.delete(pid);
  return [...set];
}

function killLeftovers(pids) {
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
}

/**
 * Stops a process we started: the signal (SIGTERM by default) to its process group, SIGKILL
 * after timeoutMs; descendants that left the group (e.g. called setpgid) and outlive it are killed.
 */
export async function stopProcess(child, { signal = 'SIGTERM', timeoutMs = 10000 } = {}) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const entry = children.get(child.pid);
  if (!entry) return;
  const target = entry.group ? -child.pid : child.pid;
  const family = descendantPids(child.pid);
  try { process.kill(target, signal); } catch { /* already gone */ }
  const timer = sleep(timeoutMs).then(() => 'timeout');
  if ((await Promise.race([child.exitPromise, timer])) === 'timeout') {
    log(`${entry.name} (pid ${child.pid}) did not stop within ${timeoutMs} ms after ${signal}; killing it`);
    try { process.kill(target, 'SIGKILL'); } catch { /* gone */ }
    await child.exitPromise;
  }
  // Anything left in its process group (forked helpers) or of its descendants goes too.
  if (entry.group) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* none */ } }
  await sleep(50);
  const table = processTable();
  killLeftovers(family.filter((p) => table.has(p) && isDescendantName(p, child)));
}

/** Guards against pid reuse: a leftover must still run the same program as when we saw it. */
function isDescendantName(pid, child) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].endsWith(path.basename(child.spawnfile)); } catch { return false; }
}

/**
 * Runs a command to completion. Returns {code, stdout, stderr, ms}. Registered so that it is
 * killed if we are interrupted. onSpawn(child) lets the caller sample its RSS.
 */
export function run(cmd, args, { cwd, env, input, timeoutMs = 0, onSpawn, check = true } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const entry = { child, name: path.basename(cmd), group: true };
    if (child.pid) children.set(child.pid, entry);
    child.exitPromise = new Promise((r) => child.on('exit', r));
    const out = []; const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    let timer;
    if (timeoutMs) timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); children.delete(child.pid); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child.pid);
      const res = { code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: now() - t0 };
      if (check && code !== 0) {
        const e = new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}: ${(res.stderr || res.stdout).trim().slice(-2000)}`);
        e.result = res; reject(e);
      } else resolve(res);
    });
    if (input !== undefined) child.stdin.end(input); else child.stdin.end();
    if (onSpawn) onSpawn(child);
  });
}

/** Synchronous last-resort kill of everything still running (used from 'exit'). */
export function killAllSync() {
  let table = new Map();
  try { table = processTable(); } catch { /* no /proc */ }
  for (const [pid, e] of children) {
    const family = [...descendants([pid], table)];
    try { process.kill(e.group ? -pid : pid, 'SIGKILL'); } catch { /* gone */ }
    killLeftovers(family);
  }
  children.clear();
}

/** Graceful stop of everything still registered (used on SIGINT / failure). */
export async function stopAll() {
  await Promise.all([...children.values()].map((e) => stopProcess(e.child, { timeoutMs: 5000 })));
}

// ---------------------------------------------------------------- network

/** A free TCP port on 127.0.0.1 (bound and released; good enough for a benchmark). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Polls fn() until it returns a truthy value; throws after timeoutMs with a description. */
export async function until(fn, { timeoutMs = 60000, intervalMs = 50, what = 'condition' } = {}) {
  const t0 = now();
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = undefined;
    } catch (e) { last = e; }
    if (now() - t0 > timeoutMs) {
      throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------- memory

function readProcStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(s);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(s);
    if (!rss) return null; // zombie
    return { rss: Number(rss[1]) * 1024, hwm: hwm ? Number(hwm[1]) * 1024 : 0 };
  } catch { return null; }
}

function processTable() {
  const parent = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch { /* gone */ }
  }
  return parent;
}

function descendants(roots, table) {
  const set = new Set(roots.filter((p) => table.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of table) if (!set.has(pid) && set.has(ppid)) { set.add(pid); grew = true; }
  }
  return set;
}

/**
 * Samples the resident memory of process trees every intervalMs. sides() returns
 * {sideName: [rootPid, ...]}; the memory of a side is the sum over the roots and all their
 * descendants. Processes that were already running when sampling began are measured by
 * VmRSS (their VmHWM would include earlier work); processes born during the measurement by
 * VmHWM, so that short-lived helpers (rsync's forks, cp) are not missed between samples.
 * stop() returns {peak, bySide} in bytes; peak is the largest side.
 */
export function startRssSampler(sides, { intervalMs = 50 } = {}) {
  const preexisting = new Set();
  const seen = new Map(); // pid -> side
  const hwmOfNew = new Map(); // pid -> last VmHWM
  const peakBySide = {};
  let table = processTable();
  for (const roots of Object.values(sides())) for (const p of descendants(roots, table)) preexisting.add(p);
  let lastTree = 0;
  let stopped = false;
  const sample = () => {
    if (now() - lastTree >= 100) { table = processTable(); lastTree = now(); }
    for (const [side, roots] of Object.entries(sides())) {
      let sum = 0;
      const pids = descendants(roots, table);
      for (const p of pids) {
        seen.set(p, side);
        const st = readProcStatus(p);
        if (!st) { sum += hwmOfNew.get(p) ?? 0; continue; } // zombie: counts with its high-water mark
        if (preexisting.has(p)) sum += st.rss;
        else { hwmOfNew.set(p, Math.max(hwmOfNew.get(p) ?? 0, st.hwm)); sum += st.hwm; }
      }
      // Helpers that were born during the measurement and already exited still count with
      // their high-water mark, as if they had overlapped with the rest.
      for (const [p, h] of hwmOfNew) if (seen.get(p) === side && !pids.has(p)) sum += h;
      peakBySide[side] = Math.max(peakBySide[side] ?? 0, sum);
    }
  };
  // Processes we spawned during the measurement (cp, the rsync client) can live for a few
  // milliseconds only: their own high-water mark is read every 5 ms.
  const fast = () => {
    for (const [side, roots] of Object.entries(sides())) {
      for (const p of roots) {
        if (preexisting.has(p)) continue;
        const st = readProcStatus(p);
        if (st) { seen.set(p, side); hwmOfNew.set(p, Math.max(hwmOfNew.get(p) ?? 0, st.hwm)); }
      }
    }
  };
  sample();
  const timer = setInterval(() => { if (!stopped) sample(); }, intervalMs);
  const fastTimer = setInterval(() => { if (!stopped) fast(); }, 5);
  return {
    stop() {
      table = processTable(); lastTree = now();
      sample();
      stopped = true; clearInterval(timer); clearInterval(fastTimer);
      const peak = Math.max(0, ...Object.values(peakBySide));
      return { peak, bySide: { ...peakBySide } };
    },
  };
}

// ---------------------------------------------------------------- data

/** Writes size random bytes to file. */
export async function writeRandomFile(file, size) {
  const fh = await fsp.open(file, 'w');
  const buf = Buffer.allocUnsafe(Math.min(size, 4 * MiB));
  try {
    for (let off = 0; off < size; off += buf.length) {
      const n = Math.min(buf.length, size - off);
      crypto.randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n, off);
    }
  } finally { await fh.close(); }
}

/** A tree of dirs*perDir random files of fileSize bytes: root/dNNN/fNNNN. */
export function writeRandomTree(root, { dirs, perDir, fileSize }) {
  fs.mkdirSync(root, { recursive: true });
  const pool = crypto.randomBytes(Math.max(fileSize * perDir, 1));
  for (let d = 0; d < dirs; d++) {
    const dir = path.join(root, `d${String(d).padStart(3, '0')}`);
    fs.mkdirSync(dir);
    crypto.randomFillSync(pool);
    for (let f = 0; f < perDir; f++) {
      fs.writeFileSync(path.join(dir, `f${String(f).padStart(4, '0')}`), pool.subarray(f * fileSize, (f + 1) * fileSize));
    }
  }
  return dirs * perDir;
}

/** Overwrites len bytes at offset with random data (same size, new mtime). Returns the data. */
export async function overwriteRandom(file, offset, len) {
  const data = crypto.randomBytes(len);
  const fh = await fsp.open(file, 'r+');
  try { await fh.write(data, 0, len, offset); } finally { await fh.close(); }
  return data;
}

/** The contents of `count` regions of `len` bytes spread evenly over a file (first and last included). */
export async function sampleRegions(file, size, count = 32, len = 4096) {
  const fh = await fsp.open(file, 'r');
  try {
    const out = [];
    for (let i = 0; i < count; i++) {
      const off = Math.max(0, Math.min(size - len, Math.floor((size - len) * i / (count - 1))));
      const buf = Buffer.alloc(Math.min(len, size));
      await fh.read(buf, 0, buf.length, off);
      out.push({ off, buf });
    }
    return out;
  } finally { await fh.close(); }
}

/** True when file has the given size and the given regions (reads only those). */
export async function fileMatches(file, size, regions) {
  let fh;
  try {
    fh = await fsp.open(file, 'r');
    const st = await fh.stat();
    if (st.size !== size) return false;
    const buf = Buffer.alloc(Math.max(...regions.map((r) => r.buf.length)));
    for (const r of regions) {
      const { bytesRead } = await fh.read(buf, 0, r.buf.length, r.off);
      if (bytesRead !== r.buf.length || buf.compare(r.buf, 0, r.buf.length, 0, r.buf.length) !== 0) return false;
    }
    return true;
  } catch { return false; } finally { await fh?.close(); }
}

/** Byte-for-byte comparison of two files (streamed). Returns null if equal, else a reason. */
export async function compareFiles(a, b) {
  const [sa, sb] = await Promise.all([fsp.stat(a), fsp.stat(b).catch(() => null)]);
  if (!sb) return `${b} is missing`;
  if (sa.size !== sb.size) return `${b} has ${sb.size} bytes, expected ${sa.size}`;
  const fa = await fsp.open(a, 'r'); const fb = await fsp.open(b, 'r');
  try {
    const ba = Buffer.allocUnsafe(4 * MiB); const bb = Buffer.allocUnsafe(4 * MiB);
    for (let off = 0; off < sa.size; off += ba.length) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, off), fb.read(bb, 0, bb.length, off)]);
      if (ra.bytesRead !== rb.bytesRead || ba.compare(bb, 0, rb.bytesRead, 0, ra.bytesRead) !== 0) {
        return `${b} differs from ${a} in the 4 MiB block at offset ${off}`;
      }
    }
    return null;
  } finally { await fa.close(); await fb.close(); }
}

/** Regular files under root (relative paths), skipping names starting with '.' (tool metadata). */
export function listFiles(root) {
  const out = [];
  const walk = (dir, rel) => {
    let ents;
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) walk(path.join(dir, e.name), rel ? `${rel}/${e.name}` : e.name);
      else if (e.isFile()) out.push(rel ? `${rel}/${e.name}` : e.name);
    }
  };
  walk(root, '');
  return out;
}

/** Number of regular files (not starting with '.') under root, cheap enough to poll. */
export function countFiles(root) { return listFiles(root).length; }

/** True when every file of `expected` (relative path -> size) exists under root with that size. */
export function treeSizesMatch(root, expected) {
  if (countFiles(root) !== expected.size) return false;
  for (const [rel, size] of expected) {
    try { if (fs.statSync(path.join(root, rel)).size !== size) return false; } catch { return false; }
  }
  return true;
}

/** relative path -> size for every file under root. */
export function treeSizes(root) {
  const m = new Map();
  for (const rel of listFiles(root)) m.set(rel, fs.statSync(path.join(root, rel)).size);
  return m;
}

/** Byte-for-byte comparison of two trees' regular files. Returns null if equal, else a reason. */
export async function compareTrees(a, b) {
  const fa = listFiles(a).sort(); const fb = listFiles(b).sort();
  if (fa.length !== fb.length) return `${b} has ${fb.length} files, expected ${fa.length}`;
  for (let i = 0; i < fa.length; i++) {
    if (fa[i] !== fb[i]) return `file lists differ at ${fa[i]} / ${fb[i]}`;
    const x = fs.readFileSync(path.join(a, fa[i])); const y = fs.readFileSync(path.join(b, fb[i]));
    if (!x.equals(y)) return `${fb[i]} differs`;
  }
  return null;
}

/** Flushes dirty pages so that one step's writeback does not land in the next step's timing. */
export async function syncDisks() { await run('sync', []); }

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function percentile(xs, p) {
  const v = [...xs].sort((a, b) => a - b);
  if (!v.length) return NaN;
  // nearest-rank
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < MiB) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < GiB) return `${(n / MiB).toFixed(n < 10 * MiB ? 2 : 1)} MiB`;
  return `${(n / GiB).toFixed(2)} GiB`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}
