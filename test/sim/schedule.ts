/**
 * The plan of one simulation, drawn from its seed before anything runs: a list of steps (user
 * operations, faults, scans, waits). Every step draws the same numbers whatever happens at run
 * time, so a seed always names the same plan; what a step does is resolved against the folders
 * when it runs (for example "the third of the files that exist there now").
 */
import { Rng } from './rng.js';

export type OpKind =
  | 'create'
  | 'mkdir'
  | 'overwrite'
  | 'append'
  | 'editMiddle'
  | 'truncate'
  | 'deleteFile'
  | 'renameFile'
  | 'renameDir'
  | 'deleteDir'
  | 'changeCase'
  | 'large'
  | 'largeEdit'
  | 'empty'
  | 'bothCreate'
  | 'bothEdit'
  | 'deleteDirVsAdd'
  | 'symlink'
  | 'chmod'
  | 'typeClash';

export type FaultKind = 'partition' | 'heal' | 'stall' | 'drop' | 'corrupt' | 'crash' | 'restart';

export interface OpPlan {
  readonly kind: OpKind;
  /** The node it runs on, and a second node for two-node operations. */
  readonly node: number;
  readonly other: number;
  /** Uniform numbers that pick among what exists when the step runs. */
  readonly u: readonly [number, number, number];
  readonly size: number;
  readonly contentSeed: number;
  readonly flag: boolean;
  /** Scan right after (else the edit waits for a later scan, piling up with others). */
  readonly scan: boolean;
}

export interface FaultPlan {
  readonly kind: FaultKind;
  readonly node: number;
  readonly other: number;
  /** For partitions: the nodes of one side (the rest are the other side). */
  readonly group: readonly number[];
  readonly ms: number;
  readonly count: number;
  readonly flag: boolean;
}

export type Step =
  | { readonly kind: 'op'; readonly op: OpPlan }
  | { readonly kind: 'fault'; readonly fault: FaultPlan }
  | { readonly kind: 'scan'; readonly node: number; readonly all: boolean }
  | { readonly kind: 'wait'; readonly ms: number }
  | { readonly kind: 'sync'; readonly ms: number };

export interface SimConfig {
  readonly nodes: number;
  readonly steps: number;
  /** Share of steps that are faults (0 disables faults). */
  readonly faultRate: number;
  /** Fault kinds allowed (the real-process variant can only crash and restart). */
  readonly faults: readonly FaultKind[];
  /**
   * Version of the plan generator (default: the latest). Version 1 has no symlink and chmod
   * operations; old seeds keep their plans by naming their version.
   */
  readonly schedule?: number;
}

export const LATEST_SCHEDULE = 2;

const OP_WEIGHTS: readonly (readonly [number, OpKind])[] = [
  [14, 'create'],
  [5, 'mkdir'],
  [10, 'overwrite'],
  [7, 'append'],
  [7, 'editMiddle'],
  [4, 'truncate'],
  [6, 'deleteFile'],
  [6, 'renameFile'],
  [3, 'renameDir'],
  [3, 'deleteDir'],
  [3, 'changeCase'],
  [2, 'large'],
  [2, 'largeEdit'],
  [2, 'empty'],
  [4, 'bothCreate'],
  [5, 'bothEdit'],
  [3, 'deleteDirVsAdd'],
];

const OP_WEIGHTS_V2: readonly (readonly [number, OpKind])[] = [...OP_WEIGHTS, [4, 'symlink'], [2, 'chmod'], [3, 'typeClash']];

const FAULT_WEIGHTS: readonly (readonly [number, FaultKind])[] = [
  [4, 'partition'],
  [4, 'heal'],
  [3, 'stall'],
  [3, 'drop'],
  [3, 'corrupt'],
  [2, 'crash'],
  [3, 'restart'],
];

/** Size of new content: empty, small, medium, or (rarely, and only when asked) large. */
function drawSize(rng: Rng, large: boolean): number {
  const c = rng.next();
  const x = rng.next();
  if (large) return 1024 * 1024 + Math.floor(x * 5 * 1024 * 1024);
  if (c < 0.08) return 0;
  if (c < 0.5) return 1 + Math.floor(x * 4096);
  return 4096 + Math.floor(x * 400 * 1024);
}

function drawOp(rng: Rng, nodes: number, schedule: number): OpPlan {
  const kind = rng.weighted(schedule >= 2 ? OP_WEIGHTS_V2 : OP_WEIGHTS);
  const node = rng.int(0, nodes - 1);
  const other = (node + rng.int(1, nodes - 1)) % nodes;
  const u: [number, number, number] = [rng.next(), rng.next(), rng.next()];
  const size = drawSize(rng, kind === 'large');
  const contentSeed = rng.u32();
  const flag = rng.chance(0.3);
  const scan = rng.chance(0.75);
  return { kind, node, other, u, size, contentSeed, flag, scan };
}

function drawFault(rng: Rng, nodes: number, allowed: readonly FaultKind[]): FaultPlan {
  const table = FAULT_WEIGHTS.filter(([, k]) => allowed.includes(k));
  const kind = rng.weighted(table);
  const node = rng.int(0, nodes - 1);
  const other = (node + rng.int(1, nodes - 1)) % nodes;
  // One side of a partition: a non-empty proper subset.
  const order = Array.from({ length: nodes }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const cut = rng.int(1, nodes - 1);
  const group = order.slice(0, cut).sort((a, b) => a - b);
  const ms = rng.int(50, 4000);
  const count = rng.int(1, 3);
  const flag = rng.chance(0.5);
  return { kind, node, other, group, ms, count, flag };
}

export function planSchedule(seed: number, config: SimConfig): Step[] {
  const rng = new Rng(seed);
  const steps: Step[] = [];
  for (let i = 0; i < config.steps; i++) {
    const r = rng.next();
    const node = rng.int(0, config.nodes - 1);
    const ms = rng.int(0, 300);
    const op = drawOp(rng, config.nodes, config.schedule ?? LATEST_SCHEDULE);
    const fault = drawFault(rng, config.nodes, config.faults);
    if (r < config.faultRate && config.faults.length > 0) steps.push({ kind: 'fault', fault });
    else if (r < config.faultRate + 0.08) steps.push({ kind: 'scan', node, all: ms < 60 });
    else if (r < config.faultRate + 0.15) steps.push({ kind: 'wait', ms });
    else if (r < config.faultRate + 0.19) steps.push({ kind: 'sync', ms: 3000 });
    else steps.push({ kind: 'op', op });
  }
  return steps;
}

export function describeStep(step: Step, names: readonly string[]): string {
  switch (step.kind) {
    case 'op': {
      const o = step.op;
      const two = ['bothCreate', 'bothEdit', 'deleteDirVsAdd', 'typeClash'].includes(o.kind) ? `+${names[o.other]}` : '';
      return `op ${o.kind} on ${names[o.node]}${two}${o.scan ? '' : ' (no scan)'}`;
    }
    case 'fault': {
      const f = step.fault;
      switch (f.kind) {
        case 'partition':
          return `fault partition [${f.group.map((i) => names[i]).join(',')}] | rest`;
        case 'stall':
          return `fault stall ${names[f.node]}<->${names[f.other]} ${f.ms} ms`;
        case 'drop':
          return `fault drop connections of ${f.flag ? 'everyone' : names[f.node]}`;
        case 'corrupt':
          return `fault corrupt next ${f.count} block replies ${names[f.node]}->${names[f.other]}`;
        case 'crash':
          return `fault crash ${f.flag ? 'a node mid-transfer, else ' : ''}${names[f.node]}`;
        case 'restart':
          return `fault restart a crashed node (preferably ${names[f.node]})`;
        default:
          return `fault ${f.kind}`;
      }
    }
    case 'scan':
      return step.all ? 'scan every node' : `scan ${names[step.node]}`;
    case 'wait':
      return `wait ${step.ms} ms`;
    case 'sync':
      return `let the network settle (up to ${step.ms} ms)`;
  }
}
