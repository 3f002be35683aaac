#!/usr/bin/env node
// Ferry benchmark (`npm run bench`): the five sync scenarios on loopback between two nodes,
// side by side with cp (the floor), rsync (to an rsync daemon) and Syncthing 1.19 (Debian).
// Prints a Markdown table and writes it to bench/results.md. See `node scripts/bench.mjs --help`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  GiB, MiB, compareFiles, compareTrees, fileMatches, fmtBytes, fmtMs, killAllSync, log, median, now,
  overwriteRandom, percentile, run, sampleRegions, setVerbose, sleep, startRssSampler, stopAll, syncDisks,
  treeSizes, treeSizesMatch, until, writeRandomFile, writeRandomTree,
} from './bench/util.mjs';
import { REPO, RsyncTool, SyncthingTool, ferryAvailable, makeTool } from './bench/tools.mjs';

const HELP = `Usage: node scripts/bench.mjs [options]      (npm run bench -- [options])

  --runs N           repetitions of every measurement; the table shows medians (default 3, 1 with --quick)
  --only 1,3         scenarios to run (default 1,2,3,4,5):
                       1 new 1 GiB random file        2 1 MiB overwritten in its middle
                       3 10,000 x 4 KiB in 100 dirs   4 1 KiB edit latency, p50/max over 20 edits
                       5 no-change rescan of 100,000 files
  --tools LIST       ferry,rsync,syncthing (default: all three); cp always runs as the floor
  --quick            smoke run: 64 MiB file, 1,000 files, 5 edits, 10,000 files for the rescan
  --st-watch-delay S Syncthing fsWatcherDelayS for scenario 4 (default 10, Syncthing's default)
  --st-edit-runs N   runs of scenario 4 for Syncthing (default 1: at the default watcher delay
                     every edit takes ~10 s, 3 runs would add 7 minutes; each run has 20 edits)
  --out FILE         where to write the Markdown (default bench/results.md, with --quick
                     bench/results-quick.md; "-" = stdout only)
  --keep             keep the temporary work directory (for debugging)
  --verbose          log every process started
Everything runs on 127.0.0.1 in a temporary directory that is removed at the end; every process
started is stopped at the end, on failure and on SIGINT. rsync and syncthing are installed with
apt-get if missing.`;

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { runs: undefined, only: [1, 2, 3, 4, 5], tools: ['ferry', 'rsync', 'syncthing'], quick: false, stWatchDelay: 10,
    out: undefined, keep: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const key = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const val = () => { const v = eq > 0 && a.startsWith('--') ? a.slice(eq + 1) : argv[++i]; if (v === undefined) throw new Error(`${key} needs a value`); return v; };
    switch (key) {
      case '--help': case '-h': console.log(HELP); process.exit(0); break;
      case '--runs': o.runs = Number(val()); break;
      case '--only': o.only = val().split(',').map(Number); break;
      case '--tools': o.tools = val().split(',').map((s) => s.trim().toLowerCase()).filter((s) => s && s !== 'cp'); break;
      case '--quick': o.quick = true; break;
      case '--st-watch-delay': o.stWatchDelay = Number(val()); break;
      case '--st-edit-runs': o.stEditRuns = Number(val()); break;
      case '--out': o.out = val(); break;
      case '--keep': o.keep = true; break;
      case '--verbose': o.verbose = true; break;
      default: throw Object.assign(new Error(`unknown option ${a} (see --help)`), { usage: true });
    }
  }
  o.runs ??= o.quick ? 1 : 3;
  o.out ??= path.join(REPO, 'bench', o.quick ? 'results-quick.md' : 'results.md');
  o.stEditRuns ??= 1;
  if (!Number.isInteger(o.stEditRuns) || o.stEditRuns < 1) throw new Error('--st-edit-runs must be a positive integer');
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs must be a positive integer');
  for (const s of o.only) if (![1, 2, 3, 4, 5].includes(s)) throw new Error(`--only: no scenario ${s}`);
  for (const t of o.tools) if (!['ferry', 'rsync', 'syncthing'].includes(t)) throw new Error(`--tools: unknown tool ${t}`);
  if (!(o.stWatchDelay >= 1)) throw new Error('--st-watch-delay must be >= 1');
  o.size = o.quick
    ? { big: 64 * MiB, patch: MiB, tree: { dirs: 100, perDir: 10, fileSize: 4096 }, edits: 5, editFile: 64 * 1024, edit: 1024, rescan: { dirs: 100, perDir: 100, fileSize: 1024 } }
    : { big: GiB, patch: MiB, tree: { dirs: 100, perDir: 100, fileSize: 4096 }, edits: 20, editFile: 64 * 1024, edit: 1024, rescan: { dirs: 1000, perDir: 100, fileSize: 1024 } };
  return o;
}

const SCENARIO_NAMES = (o) => ({
  1: `new ${fmtBytes(o.size.big)} random file`,
  2: `${fmtBytes(o.size.patch)} overwritten in the middle`,
  3: `${(o.size.tree.dirs * o.size.tree.perDir).toLocaleString('en')} files of ${o.size.tree.fileSize / 1024} KiB in ${o.size.tree.dirs} dirs`,
  4: `1 KiB edit latency (${o.size.edits} edits)`,
  5: `no-change rescan of ${(o.size.rescan.dirs * o.size.rescan.perDir).toLocaleString('en')} files`,
});

// ---------------------------------------------------------------- set-up of the machine

async function have(cmd) { return (await run('sh', ['-c', `command -v ${cmd}`], { check: false })).code === 0; }

/** Installs Debian packages that are missing (apt-get install -y; apt-get update and retry if that fails). */
async function ensurePackages(pkgs) {
  const missing = [];
  for (const p of pkgs) if (!(await have(p))) missing.push(p);
  if (!missing.length) return;
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => run(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), ...args], { env, check: false, timeoutMs: 900000 });
  log(`installing ${missing.join(', ')} from Debian (apt-get install -y)`);
  let r = await apt(['install', '-y', ...missing]);
  if (r.code !== 0) {
    log('apt-get install failed; running apt-get update and retrying');
    await apt(['update']);
    r = await apt(['install', '-y', ...missing]);
  }
  for (const p of missing) if (!(await have(p))) throw new Error(`could not install ${p} with apt-get: ${(r.stderr || r.stdout).trim().slice(-800)}`);
}

async function machineInfo() {
  const cpu = os.cpus()[0]?.model ?? '?';
  const rsyncV = (await have('rsync')) ? (await run('rsync', ['--version'])).stdout.split('\n')[0].replace(/\s+protocol.*/, '').replace(/\s+/g, ' ') : '';
  const stV = (await have('syncthing')) ? (await run('syncthing', ['--version'])).stdout.split(' ').slice(0, 2).join(' ') : '';
  const git = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, check: false });
  const dirty = (await run('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO, check: false })).stdout.trim() ? ' + uncommitted changes in src/' : '';
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length, mem: os.totalmem(), cpu, load: os.loadavg(), kernel: os.release(), node: process.version,
    rsync: rsyncV, syncthing: stV, ferry: `${git.stdout.trim() || '?'}${dirty}`,
  };
}

// ---------------------------------------------------------------- scenarios

/**
 * Waits until the change is complete on side B for a live tool: `onDisk()` (the data is on
 * B's disk) and the tool's own report. Returns the elapsed time since t0.
 */
async function waitLive(tool, folder, t0, onDisk, { timeoutMs, intervalMs }) {
  let t1;
  await until(async () => {
    if (!(await onDisk())) return false;
    t1 ??= now(); // first moment the data is on disk (kept for the note)
    return tool.isDone(folder);
  }, { timeoutMs, intervalMs, what: `${tool.name} to bring the change to the other side` });
  return { ms: now() - t0, diskMs: t1 - t0 };
}

/** Runs fn with an RSS sampler and wire-byte counters around it. fn returns {ms, wire?, ...}. */
async function measured(tool, folder, fn) {
  await syncDisks();
  const bytes0 = tool.kind === 'live' ? await tool.wireBytes() : null;
  const sampler = startRssSampler(() => tool.rssSides());
  let res;
  try { res = await fn(); } finally { res = { ...res, rss: sampler.stop().peak }; }
  if (tool.kind !== 'live') {
    // cp and rsync leave their data in the page cache; Ferry and Syncthing fsync before they
    // rename. Untimed in the row, but noted: what it takes to have the same on disk.
    const t = now();
    await syncDisks();
    res.flushMs = now() - t;
  }
  if (tool.kind === 'live') {
    await tool.settle(folder, res.settle ?? {});
    res.wire = (await tool.wireBytes()) - bytes0;
  }
  return res;
}

/** Scenario 1: a new big random file appears on A. */
async function s1(tool, ctx, { timed = true } = {}) {
  const name = 'big.bin';
  const src = path.join(tool.src('s1'), name); const dst = path.join(tool.dst('s1'), name);
  const size = ctx.o.size.big;
  const regions = await sampleRegions(ctx.data.big, size);
  let res;
  if (tool.kind === 'live') {
    const staged = path.join(tool.staging(), name);
    await run('cp', [ctx.data.big, staged]);
    res = await measured(tool, 's1', async () => {
      fs.renameSync(staged, src);
      const t0 = now();
      tool.kick('s1');
      return waitLive(tool, 's1', t0, () => fileMatches(dst, size, regions), { timeoutMs: 600000, intervalMs: 20 });
    });
  } else {
    await run('cp', [ctx.data.big, src]);
    res = await measured(tool, 's1', async () => (tool.kind === 'push' ? tool.sync('s1') : { ms: await tool.copy([src, dst]) }));
  }
  const bad = await compareFiles(src, dst);
  if (bad) throw new Error(`verification failed: ${bad}`);
  return timed ? res : null;
}

/** Scenario 2: 1 MiB overwritten in the middle of the big file (same size, new mtime). */
async function s2(tool, ctx, state) {
  const name = 'big.bin';
  const src = path.join(tool.src('s1'), name); const dst = path.join(tool.dst('s1'), name);
  if (!state.s1) { await s1(tool, ctx, { timed: false }); state.s1 = true; }
  const size = ctx.o.size.big; const len = ctx.o.size.patch;
  const offset = Math.floor((size - len) / 2 / 4096) * 4096 + 1234; // deliberately not block-aligned
  return measured(tool, 's1', async () => {
    const patch = await overwriteRandom(src, offset, len);
    const t0 = now();
    if (tool.kind === 'push') { const r = await tool.sync('s1'); return { ...r, ms: now() - t0 }; }
    const regions = [{ off: offset, buf: patch }, ...(await sampleRegions(src, size, 8))];
    tool.kick('s1');
    return waitLive(tool, 's1', t0, () => fileMatches(dst, size, regions), { timeoutMs: 300000, intervalMs: 20 });
  }).then(async (res) => {
    const bad = await compareFiles(src, dst);
    if (bad) throw new Error(`verification failed: ${bad}`);
    return res;
  });
}

/** Scenario 3: a tree of many small files appears on A. */
async function s3(tool, ctx) {
  const src = path.join(tool.src('s3'), 'tree'); const dst = path.join(tool.dst('s3'), 'tree');
  let res;
  if (tool.kind === 'live') {
    const staged = path.join(tool.staging(), 'tree');
    await run('cp', ['-a', ctx.data.tree, staged]);
    res = await measured(tool, 's3', async () => {
      fs.renameSync(staged, src);
      const t0 = now();
      tool.kick('s3');
      return waitLive(tool, 's3', t0, () => treeSizesMatch(dst, ctx.data.treeSizes), { timeoutMs: 600000, intervalMs: 100 });
    });
  } else {
    await run('cp', ['-a', ctx.data.tree, src]);
    res = await measured(tool, 's3', async () => (tool.kind === 'push' ? tool.sync('s3') : { ms: await tool.copy(['-a', src, dst]) }));
  }
  const bad = await compareTrees(src, dst);
  if (bad) throw new Error(`verification failed: ${bad}`);
  return res;
}

/** Scenario 4: latency of single 1 KiB edits (live tools only). */
async function s4(tool, ctx) {
  const name = 'edit.bin';
  const src = path.join(tool.src('s4'), name); const dst = path.join(tool.dst('s4'), name);
  const size = ctx.o.size.editFile;
  // Set-up (untimed): the file exists on both sides.
  const staged = path.join(tool.staging(), name);
  await writeRandomFile(staged, size);
  fs.renameSync(staged, src);
  tool.kick('s4');
  const first = fs.readFileSync(src);
  await until(async () => { try { return fs.readFileSync(dst).equals(first) && (await tool.isDone('s4')); } catch { return false; } },
    { timeoutMs: 120000 + 3000 * (tool.watchDelayS ?? 0), intervalMs: 50, what: `${tool.name} to sync the file for scenario 4` });
  await tool.settle('s4');
  await sleep(1500); // let watchers and the status snapshot go quiet
  const lat = [];
  const res = await measured(tool, 's4', async () => {
    for (let i = 0; i < ctx.o.size.edits; i++) {
      await sleep(300 + Math.floor(Math.random() * 300));
      const off = Math.floor(Math.random() * (size - ctx.o.size.edit));
      await overwriteRandom(src, off, ctx.o.size.edit);
      const t0 = now();
      const want = fs.readFileSync(src);
      await until(() => { try { return fs.readFileSync(dst).equals(want); } catch { return false; } },
        { timeoutMs: 60000 + 3000 * (tool.watchDelayS ?? 0), intervalMs: 5, what: `edit ${i + 1} of ${ctx.o.size.edits} to reach the other side` });
      lat.push(now() - t0);
      await until(() => tool.isDone('s4'), { timeoutMs: 60000, intervalMs: 20, what: `${tool.name} to report edit ${i + 1} done` });
    }
    return { ms: median(lat) };
  });
  return { ...res, p50: percentile(lat, 50), max: Math.max(...lat), lat, wirePerEdit: res.wire / lat.length };
}

// ---------------------------------------------------------------- driver

const results = []; // {scenario, tool, run, ms, wire, rss, p50, max, ratio, note, error}
const problems = new Map(); // "tool: text" -> count: anomalies seen that did not stop a measurement
function noteProblems(tool) {
  for (const p of tool?.problems ?? []) problems.set(`${tool.name}: ${p}`, (problems.get(`${tool.name}: ${p}`) ?? 0) + 1);
  if (tool?.problems) tool.problems.length = 0;
}
let tmpRoot = null;
let opts;

async function runPairScenarios(toolName, runIdx, ctx, pairScenarios) {
  let seq = 0;
  let tool = null;
  const state = { s1: false };
  const fresh = async () => {
    // Trees are deleted only at the end of the bench (see main).
    if (tool) { await tool.teardown(); noteProblems(tool); }
    const root = path.join(ctx.runDir, `${toolName}-${seq++}`);
    fs.mkdirSync(root, { recursive: true });
    tool = makeTool(toolName, root, { watchDelayS: opts.stWatchDelay });
    const folders = [];
    if (pairScenarios.some((s) => s === 1 || s === 2)) folders.push({ id: 's1', watch: false });
    if (pairScenarios.includes(3)) folders.push({ id: 's3', watch: false });
    if (pairScenarios.includes(4)) folders.push({ id: 's4', watch: true });
    log(`run ${runIdx}: ${toolName}: setting up`);
    await tool.setup(folders);
    state.s1 = false;
  };
  try {
    await fresh();
  } catch (e) {
    for (const s of pairScenarios) results.push({ scenario: s, tool: toolName, run: runIdx, error: `set-up failed: ${e.message}` });
    if (tool) { await tool.teardown().catch(() => {}); noteProblems(tool); }
    return;
  }
  for (const s of pairScenarios) {
    if (toolName === 'cp' && (s === 2 || s === 4)) continue;
    if (toolName === 'rsync' && s === 4) { results.push({ scenario: 4, tool: 'rsync', run: runIdx, na: 'n/a (no watcher)' }); continue; }
    if (toolName === 'syncthing' && s === 4 && runIdx > opts.stEditRuns) continue;
    log(`run ${runIdx}: ${toolName}: scenario ${s}`);
    try {
      let r;
      if (s === 1) { r = await s1(tool, ctx); state.s1 = true; }
      else if (s === 2) r = await s2(tool, ctx, state);
      else if (s === 3) r = await s3(tool, ctx);
      else if (s === 4) r = await s4(tool, ctx);
      results.push({ scenario: s, tool: toolName, run: runIdx, ...r });
      log(`run ${runIdx}: ${toolName}: scenario ${s}: ${s === 4 ? `p50 ${fmtMs(r.p50)} max ${fmtMs(r.max)}` : fmtMs(r.ms)}, `
        + `${fmtBytes(r.wire)} on the wire, peak RSS ${fmtBytes(r.rss)}`);
    } catch (e) {
      log(`run ${runIdx}: ${toolName}: scenario ${s} FAILED: ${e.message}`);
      results.push({ scenario: s, tool: toolName, run: runIdx, error: e.message });
      try { await fresh(); } catch (e2) {
        log(`${toolName}: could not set up again: ${e2.message}`);
        for (const rest of pairScenarios.filter((x) => x > s)) results.push({ scenario: rest, tool: toolName, run: runIdx, error: `not run: set-up failed: ${e2.message}` });
        break;
      }
    }
  }
  await tool.teardown();
  noteProblems(tool);
}

async function runRescan(toolName, ctx) {
  const root = path.join(tmpRoot, `s5-${toolName}`);
  fs.mkdirSync(root, { recursive: true });
  const files = ctx.data.rescanFiles;
  const tool = makeTool(toolName, root, { watchDelayS: opts.stWatchDelay, settleTimeoutMs: 900000 });
  try {
    log(`scenario 5: ${toolName}: setting up ${files.toLocaleString('en')} files`);
    // Hard-linked copies of the same tree: instant, identical mtimes, nothing modifies them.
    fs.mkdirSync(path.dirname(tool.src('s5')), { recursive: true });
    await run('cp', ['-al', ctx.data.rescan, tool.src('s5')]);
    if (tool.kind === 'push') {
      fs.mkdirSync(path.dirname(tool.dst('s5')), { recursive: true });
      await run('cp', ['-al', ctx.data.rescan, tool.dst('s5')]);
    }
    const t0 = now();
    await tool.setup([{ id: 's5', watch: false }], { single: true });
    let firstNote = '';
    if (tool.kind === 'live') {
      await tool.waitLocalFiles('s5', files, 900000);
      firstNote = `set-up incl. first index ${fmtMs(now() - t0)}`;
    } else {
      const r = await tool.sync('s5', { dryRun: true });
      if (!/Number of regular files transferred:\s*0\b/.test(r.stats)) throw new Error('the no-change dry run would transfer files; the replica differs');
    }
    for (let i = 1; i <= opts.runs; i++) {
      await syncDisks();
      await sleep(500);
      const sampler = startRssSampler(() => tool.rssSides());
      let r;
      try { r = tool.kind === 'push' ? await tool.sync('s5', { dryRun: true }) : await tool.rescan('s5', { files }); }
      finally { r = { ...r, rss: sampler.stop().peak }; }
      results.push({ scenario: 5, tool: toolName, run: i, ms: r.ms, wire: tool.kind === 'push' ? r.wire : null, rss: r.rss,
        note: [firstNote, r.note].filter(Boolean).join('; '), ownMs: r.ownMs });
      log(`scenario 5: ${toolName}: run ${i}: ${fmtMs(r.ms)}, peak RSS ${fmtBytes(r.rss)}`);
    }
  } catch (e) {
    log(`scenario 5: ${toolName} FAILED: ${e.message}`);
    results.push({ scenario: 5, tool: toolName, run: 1, error: e.message });
  } finally {
    await tool.teardown().catch((e) => log(`teardown: ${e.message}`));
    noteProblems(tool);
    if (!opts.keep) fs.rmSync(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report

function summarize(o, machine, cmdline, started, ferrySkip, tools) {
  const names = SCENARIO_NAMES(o);
  const order = ['ferry', 'syncthing', 'rsync', 'cp'];
  const rows = [];
  for (const s of o.only) {
    const floor = results.filter((r) => r.scenario === s && r.tool === 'cp' && !r.error);
    for (const t of order) {
      if (t !== 'cp' && !tools.includes(t)) continue;
      const rs = results.filter((r) => r.scenario === s && r.tool === t);
      if (!rs.length) continue;
      const ok = rs.filter((r) => !r.error && !r.na);
      const errs = [...new Set(rs.filter((r) => r.error).map((r) => r.error))];
      const row = { s, scen: names[s], tool: t, time: '—', runs: '', wire: '—', rss: '—', ratio: '', notes: [] };
      if (rs.some((r) => r.na)) { row.time = rs.find((r) => r.na).na; rows.push(row); continue; }
      if (ok.length) {
        if (s === 4) {
          row.time = `p50 ${fmtMs(median(ok.map((r) => r.p50)))}, max ${fmtMs(median(ok.map((r) => r.max)))}`;
          row.runs = ok.map((r) => `${fmtMs(r.p50)}/${fmtMs(r.max)}`).join(', ');
          if (t === 'syncthing' && ok.length < o.runs) row.notes.push(`${ok.length} run${ok.length > 1 ? 's' : ''} of ${o.size.edits} edits (--st-edit-runs)`);
          row.wire = `${fmtBytes(median(ok.map((r) => r.wirePerEdit)))} per edit`;
        } else {
          row.time = fmtMs(median(ok.map((r) => r.ms)));
          row.runs = ok.map((r) => fmtMs(r.ms)).join(', ');
          const w = median(ok.map((r) => r.wire));
          row.wire = t === 'cp' ? '(local)' : (s === 5 && t !== 'rsync') ? '(one node)' : fmtBytes(w);
        }
        row.rss = fmtBytes(median(ok.map((r) => r.rss)));
        if ((s === 1 || s === 3) && t !== 'cp' && floor.length) {
          const ratios = ok.map((r) => { const f = floor.find((x) => x.run === r.run); return f ? r.ms / f.ms : NaN; });
          const m = median(ratios);
          if (Number.isFinite(m)) row.ratio = `${m.toFixed(1)}×`;
        }
        if (s === 1 || s === 3) { if (t === 'cp') row.ratio = '1× (floor)'; }
        const lag = ok.filter((r) => Number.isFinite(r.diskMs) && r.ms - r.diskMs > 50).map((r) => r.ms - r.diskMs);
        if (lag.length && t === 'syncthing') row.notes.push(`data on disk ${fmtMs(median(lag))} before REST completion`);
        for (const n of new Set(ok.map((r) => r.note).filter(Boolean))) row.notes.push(n);
        const own = ok.map((r) => r.ownMs).filter(Number.isFinite);
        if (own.length) row.notes.push(`the node's own scan time: ${own.map(fmtMs).join(', ')}`);
        const flush = ok.map((r) => r.flushMs).filter(Number.isFinite);
        if (flush.length && s !== 5) row.notes.push(`then \`sync\` to disk: ${fmtMs(median(flush))} (Ferry and Syncthing fsync before they rename)`);
      }
      if (errs.length) row.notes.push(`**${rs.length - ok.length} of ${rs.length} runs failed**: ${errs.map((e) => e.replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' / ')}`);
      if (!ok.length && errs.length) row.time = 'failed';
      rows.push(row);
    }
    if (tools.includes('ferry') && ferrySkip && !results.some((r) => r.scenario === s && r.tool === 'ferry')) {
      const at = rows.findIndex((r) => r.s === s);
      rows.splice(at < 0 ? rows.length : at, 0, { s, scen: names[s], tool: 'ferry', time: 'not run', runs: '', wire: '—', rss: '—', ratio: '', notes: [ferrySkip] });
    }
  }
  const targets = ferryTargets(o, tools);
  const table = [
    '| # | scenario | tool | time (median) | runs | bytes on the wire | peak RSS | vs cp | notes |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.s} | ${r.scen} | ${r.tool} | ${r.time} | ${r.runs} | ${r.wire} | ${r.rss} | ${r.ratio} | ${r.notes.join('; ')} |`),
  ].join('\n');
  const st = new SyncthingTool('', { watchDelayS: o.stWatchDelay }); st.version = machine.syncthing.split(' ')[1] ?? '';
  const md = [
    '# Ferry benchmark',
    '',
    `- date: ${started.toISOString()} (took ${fmtMs(Date.now() - started.getTime())})`,
    `- machine: ${machine.nproc} CPUs (${machine.cpu}), ${fmtBytes(machine.mem)} memory, Linux ${machine.kernel}, Node ${machine.node}`,
    `- command: \`${cmdline}\``,
    `- versions: Ferry ${machine.ferry}; ${machine.rsync || 'rsync not used'}; ${machine.syncthing || 'Syncthing not used'}`,
    `- load average (1/5/15 min) at start ${machine.load.map((x) => x.toFixed(1)).join(' / ')}, at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}${Math.max(...machine.load, ...os.loadavg()) > machine.nproc / 2 ? ' — **other work was running on this machine; timings are noisy**' : ''}`,
    `- runs: ${o.runs} per measurement (medians shown, every run listed)${o.quick ? '; **--quick sizes**' : ''}`,
    '',
    table,
    '',
    ...(targets ? ['### Ferry against its targets', '', targets, ''] : []),
    ...(problems.size ? ['## Problems seen', '', ...[...problems].map(([p, n]) => `- ${p}${n > 1 ? ` (${n} times)` : ''}`), ''] : []),
    '## How it is measured',
    '',
    '- Two sides on 127.0.0.1, one temporary directory on the same file system, page cache warm (the source was just copied into place); `sync` before every measurement.',
    '- **time**: from the moment the change is complete on side A (the new file or tree renamed into the folder from a staging directory on the same file system; the edit written and closed) until it is complete on side B. For cp and rsync: the command\'s run time.',
    '- **bytes on the wire**: both directions between the two sides during the measurement.',
    '- **peak RSS**: the largest side (a side = a node\'s process tree, or rsync client / daemon with its forks), summed over its processes, sampled from /proc/PID/status every 50 ms (VmRSS; VmHWM for processes born during the measurement). Median over runs.',
    '- **vs cp**: median over runs of (tool time / cp time in the same run), for scenarios 1 and 3 where cp is a meaningful floor.',
    '- Every result is verified byte for byte on side B after the measurement (untimed).',
    `- Scenario 2 overwrites ${fmtBytes(o.size.patch)} at an offset that is not 4 KiB-aligned, in the middle of the file. Scenario 4 overwrites 1 KiB at a random offset of a ${fmtBytes(o.size.editFile)} file, 0.3-0.6 s after the previous edit arrived; latency is polled on B every 5 ms. Scenario 5 runs on one node with the tree already indexed (rsync: a --dry-run against an identical replica).`,
    `- cp: ${makeTool('cp', '').describe()}`,
    `- rsync: ${new RsyncTool('').describe()}`,
    `- Syncthing: ${st.describe()}`,
    `- Ferry: ${makeTool('ferry', '').describe()} Scenario 5: POST /v1/rescan on the node's control socket (what \`ferry folder rescan\` sends), which answers when the full scan is done, timed from this process as Syncthing's REST scan is.`,
    '',
  ].join('\n');
  return md;
}

/** Medians per (scenario, tool) of the successful runs. */
function med(s, t, key) {
  const ok = results.filter((r) => r.scenario === s && r.tool === t && !r.error && !r.na);
  return ok.length ? median(ok.map((r) => r[key])) : NaN;
}

function ratioToFloor(s, t) {
  const ok = results.filter((r) => r.scenario === s && r.tool === t && !r.error && !r.na);
  const floor = results.filter((r) => r.scenario === s && r.tool === 'cp' && !r.error);
  return median(ok.map((r) => { const f = floor.find((x) => x.run === r.run); return f ? r.ms / f.ms : NaN; }));
}

/** Ferry's speed and memory targets, checked against the medians of this run (Ferry rows only). */
function ferryTargets(o, tools) {
  if (!results.some((r) => r.tool === 'ferry')) return null;
  const yes = (b) => (b === null ? '—' : b ? 'yes' : '**no**');
  const rows = [];
  const others = ['rsync', 'syncthing'].filter((t) => tools.includes(t));
  for (const s of o.only) {
    const failed = !results.some((r) => r.scenario === s && r.tool === 'ferry' && !r.error);
    if (failed) { rows.push(`| ${s} | failed | — | — |`); continue; }
    const key = s === 4 ? 'p50' : 'ms';
    const t = med(s, 'ferry', key); const rss = med(s, 'ferry', 'rss'); const wire = med(s, 'ferry', 'wire');
    let target; let met;
    if (s === 1) { const r = ratioToFloor(1, 'ferry'); target = `≤ 4× cp (is ${r.toFixed(1)}×)`; met = r <= 4; }
    if (s === 2) { target = `< 1 s and < 2 MiB on the wire (is ${fmtMs(t)}, ${fmtBytes(wire)})`; met = t < 1000 && wire < 2 * MiB; }
    if (s === 3) { const r = ratioToFloor(3, 'ferry'); target = `≤ 1.5× cp -a (is ${r.toFixed(1)}×)`; met = r <= 1.5; }
    if (s === 4) { target = `p50 < 250 ms (is ${fmtMs(t)})`; met = t < 250; }
    if (s === 5) { target = `< 0.5 s (is ${fmtMs(t)}${o.quick ? ', --quick size' : ''})`; met = t < 500; }
    const ahead = others.map((x) => {
      const v = med(s, x, key);
      return Number.isFinite(v) ? `${x} ${fmtMs(v)}: ${t < v ? 'ahead' : '**behind**'}` : null;
    }).filter(Boolean).join(', ') || '—';
    rows.push(`| ${s} | ${target}: ${yes(met)} | ${(rss / 1e6).toFixed(0)} MB: ${yes(rss < 150e6)} | ${ahead} |`);
  }
  return ['| # | scenario target | peak RSS < 150 MB | ahead of the others |', '|---|---|---|---|', ...rows].join('\n');
}

// ---------------------------------------------------------------- main

async function cleanup() {
  await stopAll();
  if (tmpRoot && !opts?.keep) { fs.rmSync(tmpRoot, { recursive: true, force: true }); tmpRoot = null; }
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) { killAllSync(); process.exit(130); }
    interrupted = true;
    log(`${sig}: stopping everything started and removing ${tmpRoot ?? 'the work directory'}`);
    cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  killAllSync();
  if (tmpRoot && !opts?.keep) { try { fs.rmSync(tmpRoot, { recursive: true, force: true }); } catch { /* best effort */ } }
});

async function main() {
  opts = parseArgs(process.argv.slice(2));
  setVerbose(opts.verbose);
  const started = new Date();
  const args = process.argv.slice(2).map((a) => (/^[\w,./=:-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
  const cmdline = process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args ? ` -- ${args}` : ''}` : `node scripts/bench.mjs${args ? ` ${args}` : ''}`;

  const pkgs = [...(opts.tools.includes('rsync') ? ['rsync'] : []), ...(opts.tools.includes('syncthing') ? ['syncthing'] : [])];
  await ensurePackages(pkgs);
  if (opts.tools.includes('syncthing')) {
    const v = (await run('syncthing', ['--version'])).stdout;
    if (!/v1\.19\./.test(v)) log(`note: expected Syncthing 1.19, found ${v.trim()}`);
  }
  let tools = [...opts.tools];
  let ferrySkip = null;
  if (tools.includes('ferry')) {
    ferrySkip = await ferryAvailable();
    if (ferrySkip) log(`Ferry is not run: ${ferrySkip}`);
  }
  const machine = await machineInfo();

  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  log(`work directory ${tmpRoot}`);
  const toolOrder = ['cp', ...['rsync', 'syncthing', 'ferry'].filter((t) => tools.includes(t) && !(t === 'ferry' && ferrySkip))];
  const pairScenarios = opts.only.filter((s) => s <= 4).sort();
  const ctx = { o: opts, data: {} };

  for (let r = 1; r <= opts.runs && pairScenarios.length; r++) {
    ctx.runDir = path.join(tmpRoot, `run${r}`);
    const dataDir = path.join(ctx.runDir, 'data');
    fs.mkdirSync(dataDir, { recursive: true });
    log(`run ${r} of ${opts.runs}: generating data`);
    if (pairScenarios.some((s) => s === 1 || s === 2)) { ctx.data.big = path.join(dataDir, 'big.bin'); await writeRandomFile(ctx.data.big, opts.size.big); }
    if (pairScenarios.includes(3)) {
      ctx.data.tree = path.join(dataDir, 'tree');
      writeRandomTree(ctx.data.tree, opts.size.tree);
      ctx.data.treeSizes = treeSizes(ctx.data.tree);
    }
    for (const t of toolOrder) await runPairScenarios(t, r, ctx, pairScenarios);
  }
  // Nothing is deleted until the end. This file system (ext4 without a journal) does not reuse
  // an inode within 60 s of its deletion (longer while its inode table block is unwritten), and
  // each file created meanwhile walks past every such inode: after 40,000 deletions, creating
  // the 10,000 files of scenario 3 took 3.5 s instead of 0.4 s (`perf`: recently_deleted in
  // ext4's find_inode_bit). Whichever tool ran in that window measured the deletion, not itself.
  if (!opts.keep) for (let r = 1; r <= opts.runs; r++) fs.rmSync(path.join(tmpRoot, `run${r}`), { recursive: true, force: true });
  if (opts.only.includes(5)) {
    ctx.data.rescan = path.join(tmpRoot, 's5-data');
    log(`scenario 5: generating ${(opts.size.rescan.dirs * opts.size.rescan.perDir).toLocaleString('en')} files`);
    ctx.data.rescanFiles = writeRandomTree(ctx.data.rescan, opts.size.rescan);
    for (const t of toolOrder.filter((x) => x !== 'cp')) await runRescan(t, ctx);
  }

  const md = summarize(opts, machine, cmdline, started, ferrySkip, tools);
  process.stdout.write(`${md}\n`);
  if (opts.out !== '-') {
    fs.mkdirSync(path.dirname(path.resolve(REPO, opts.out)), { recursive: true });
    fs.writeFileSync(path.resolve(REPO, opts.out), md);
    log(`written to ${path.relative(process.cwd(), path.resolve(REPO, opts.out)) || opts.out}`);
  }
  await cleanup();
  if (opts.keep) log(`work directory kept: ${tmpRoot}`);
}

main().catch(async (e) => {
  log(`failed: ${e.usage ? e.message : (e.stack ?? e.message)}`);
  await cleanup().catch(() => {});
  process.exit(1);
});
