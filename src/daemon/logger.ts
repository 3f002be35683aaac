/**
 * The node's log: pino, one JSON line per event on stdout, written synchronously so nothing
 * is lost when the process is killed. FERRY_LOG sets the level (default info).
 */
import pino from 'pino';

export type NodeLogger = pino.Logger;

export function createLogger(name: string): NodeLogger {
  return pino({ level: process.env.FERRY_LOG ?? 'info', base: { node: name } }, pino.destination({ dest: 1, sync: true }));
}
