/**
 * How commands print: plain text for people, JSON with `--json` for scripts. Errors become a
 * message on stderr (or `{"error":{code,message}}` with --json) and a non-zero exit code.
 */
import { ApiError } from '../api/api-error.js';
import { FerryError, errorMessage } from '../core/errors.js';
import { RemoteError } from './remote/remote-error.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printLine(text = ''): void {
  process.stdout.write(text + '\n');
}

/** The error's code: Ferry's own, the remote node's, or IO_ERROR for anything else (a system error). */
export function failWith(err: unknown, json: boolean): never {
  const code = err instanceof FerryError || err instanceof RemoteError || err instanceof ApiError ? err.code : 'IO_ERROR';
  const message = errorMessage(err);
  if (json) process.stderr.write(JSON.stringify({ error: { code, message } }) + '\n');
  else process.stderr.write(`ferry: ${message}\n`);
  process.exit(['INVALID_PATH', 'INVALID_REQUEST', 'INVALID_CONFIG'].includes(code) ? 2 : 1);
}

