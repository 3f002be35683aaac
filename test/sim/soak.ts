/**
 * Runs simulation seeds until time is up, then prints what was exercised and every failure:
 *
 *   npm run soak -- --minutes 5            seeds 1000, 1001, … (--from N to start elsewhere)
 *
 * Accepts run-sim's options too (--nodes, --steps, --fault-rate, --strict, --log). A failing
 * seed's full report is printed when it fails; the summary lists the replay commands.
 * Exits 1 when any seed failed.
 */
import { runSimulation } from './harness.js';
import { catchUncaught, parseArgs, simOptions, uncaught } from './run-sim.js';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const minutes = typeof args.minutes === 'string' ? Number(args.minutes) : 5;
  let seed = typeof args.from === 'string' ? Number(args.from) : 1000;
  const deadline = Date.now() + minutes * 60_000;
  const total = { seeds: 0, ops: 0, faults: 0, steps: 0, concurrentOps: 0, conflictCopies: 0, versions: 0, crashes: 0, corrupted: 0, dropped: 0, writes: 0, bytes: 0 };
  const faults: Record<string, number> = {};
  const ops: Record<string, number> = {};
  const failures: { seed: number; replay: string; first: string }[] = [];
  const known = new Map<string, number[]>();
  console.log(`soak: running seeds from ${seed} for ${minutes} min`);
  catchUncaught();
  while (Date.now() < deadline) {
    const r = await runSimulation(simOptions(args, seed));
    const errors = uncaught.splice(0);
    const ok = r.ok && errors.length === 0;
    const s = r.stats;
    total.seeds++;
    total.ops += s.ops;
    total.faults += s.faults;
    total.steps += s.steps;
    total.concurrentOps += s.concurrentOps;
    total.conflictCopies += s.conflictCopies;
    total.versions += s.versions;
    total.crashes += s.crashes;
    total.corrupted += s.corruptedReplies;
    total.dropped += s.droppedConnections;
    total.writes += s.writes;
    total.bytes += s.bytes;
    for (const [k, v] of Object.entries(s.faultsByKind)) faults[k] = (faults[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.opsByKind)) ops[k] = (ops[k] ?? 0) + v;
    for (const k of r.knownIssues) {
      const kind = k.split(':')[0]!;
      known.set(kind, [...(known.get(kind) ?? []), seed].filter((x, i, a) => a.indexOf(x) === i));
    }
    console.log(`seed ${seed}: ${ok ? 'ok' : 'FAILED'} (${s.nodes} nodes, ${s.ops} ops, ${s.faults} faults, ${s.conflictCopies} conflict copies, ${(s.ms / 1000).toFixed(1)} s)`);
    if (!ok) {
      failures.push({ seed, replay: r.replay, first: (errors[0] ?? r.violations[0])?.split('\n')[0] ?? 'unknown' });
      for (const e of errors) console.log(e);
      if (!r.ok) console.log(r.report);
    }
    seed++;
  }
  const line = (o: Record<string, number>) => Object.entries(o).sort(([, a], [, b]) => b - a).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log('\n==== soak summary ====');
  console.log(`seeds: ${total.seeds} (${seed - total.seeds}–${seed - 1}), steps: ${total.steps}`);
  console.log(`operations: ${total.ops} (${total.writes} contents written): ${line(ops)}`);
  console.log(`faults: ${total.faults}: ${line(faults)}`);
  console.log(`  crashes ${total.crashes}, corrupted block replies ${total.corrupted}, connections dropped by faults ${total.dropped}`);
  console.log(`conflicts: ${total.concurrentOps} concurrent two-node edits, ${total.conflictCopies} conflict copies at the end, ${total.versions} files in version areas`);
  console.log(`network: ${(total.bytes / 1024 / 1024).toFixed(1)} MiB in simulated links`);
  for (const [kind, seeds] of known) console.log(`known open issue "${kind}": ${seeds.length} seeds (e.g. ${seeds.slice(0, 8).join(', ')})`);
  console.log(`failures: ${failures.length}`);
  for (const f of failures) console.log(`  seed ${f.seed}: ${f.first}\n    replay: ${f.replay}`);
  process.exitCode = failures.length ? 1 : 0;
}

await main();
