/**
 * Runs simulation seeds from the command line:
 *
 *   npm run sim -- --seed 42                 one seed (the replay of a failure)
 *   npm run sim -- --seeds 1-20              a range
 *   npm run sim -- --seed 42 --verbose       print the trace as it happens
 *
 * Options: --nodes N, --steps N, --fault-rate X, --schedule V (plan generator version), --time-scale X, --keep (keep the folders),
 * --strict (the known open engine bugs fail the seed too),
 * --log LEVEL (node log level in the failure report: warn by default, info or debug for more).
 * Exits 1 when a seed fails, after printing its report.
 */
import { runSimulation, type SimOptions } from './harness.js';

/**
 * Errors nobody caught (an engine timer throwing, a rejected promise nobody awaited) while a seed
 * ran: they would end the process; recorded instead, and the seed counts as failed.
 */
export const uncaught: string[] = [];
export function catchUncaught(): void {
  process.on('uncaughtException', (err) => uncaught.push(`uncaught exception: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => uncaught.push(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`));
}

export function parseArgs(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (v !== undefined) out[k] = v;
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) out[k] = argv[++i]!;
    else out[k] = true;
  }
  return out;
}

export function seedList(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`bad seed list ${spec}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let s = a; s <= b; s++) out.push(s);
  }
  return out;
}

export function simOptions(args: Record<string, string | true>, seed: number): SimOptions {
  const num = (k: string) => (typeof args[k] === 'string' ? Number(args[k]) : undefined);
  return {
    seed,
    nodes: num('nodes'),
    steps: num('steps'),
    faultRate: num('fault-rate'),
    schedule: num('schedule'),
    timeScale: num('time-scale'),
    keep: args.keep ? 'always' : 'failure',
    strict: !!args.strict,
    logLevel: typeof args.log === 'string' ? args.log : undefined,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const spec = typeof args.seeds === 'string' ? args.seeds : typeof args.seed === 'string' ? args.seed : '1';
  let failed = 0;
  catchUncaught();
  for (const seed of seedList(spec)) {
    const result = await runSimulation({ ...simOptions(args, seed), onTrace: args.verbose ? (l) => console.log(`[${seed}] ${l}`) : undefined });
    const errors = uncaught.splice(0);
    const ok = result.ok && errors.length === 0;
    const s = result.stats;
    console.log(
      `seed ${seed}: ${ok ? 'ok' : 'FAILED'} — ${s.nodes} nodes, ${s.ops} ops, ${s.faults} faults, ${s.crashes} crashes, ` +
        `${s.concurrentOps} concurrent edits, ${s.conflictCopies} conflict copies, ${s.versions} versions, ${(s.ms / 1000).toFixed(1)} s`,
    );
    for (const k of result.knownIssues.slice(0, 5)) console.log(`  known open issue: ${k}`);
    if (!ok) {
      failed++;
      for (const e of errors) console.log(`${e}\nreplay: ${result.replay}`);
      if (!result.ok) console.log(result.report);
    }
  }
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
