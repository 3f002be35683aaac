/**
 * The logger shape the transport accepts: the subset of pino's API it uses, so a pino
 * logger (or a child of one) can be passed as is and tests can pass a recording fake.
 * A missing logger means silence, not console output: the daemon decides where logs go.
 */
export type LogFn = (objOrMessage: unknown, message?: string) => void;

export interface Logger {
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
}

const nothing: LogFn = () => {};

export const silentLogger: Logger = { error: nothing, warn: nothing, info: nothing, debug: nothing };
