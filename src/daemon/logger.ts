/**
 * The node's log: pino, written synchronously so nothing is lost when the process is killed.
 * One JSON line per event on stdout, for files and log collectors; on a terminal, a short
 * readable line instead (`12:01:02 WARN cannot sync file; will retry path=a.txt err=…`).
 * FERRY_LOG sets the level (default info); FERRY_LOG_FORMAT=json|text overrides the choice.
 */
import pino from 'pino';

export type NodeLogger = pino.Logger;

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, or that the readable form shows in its own way. */
const HIDDEN = new Set(['level', 'time', 'msg', 'node', 'pid', 'hostname']);

export function createLogger(name: string): NodeLogger {
  const format = process.env.FERRY_LOG_FORMAT ?? (process.stdout.isTTY ? 'text' : 'json');
  const destination = pino.destination({ dest: 1, sync: true });
  const stream = format === 'text' ? { write: (line: string) => destination.write(readable(line)) } : destination;
  return pino({ level: process.env.FERRY_LOG ?? 'info', base: { node: name } }, stream);
}

/** One JSON log line as `HH:MM:SS LEVEL message key=value …`. */
export function readable(line: string): string {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = new Date(Number(event.time)).toTimeString().slice(0, 8);
  const level = LEVEL_NAMES[Number(event.level)] ?? String(event.level);
  const fields = Object.entries(event)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/[\s"]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  return `${time} ${level.padEnd(5)} ${String(event.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
}
