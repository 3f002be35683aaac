/**
 * How commands print: plain text for people, JSON with `--json` for scripts. Errors become a
 * message on stderr (or `{"error":{code,message}}` with --json) and a non-zero exit code.
 */
import { FerryError, errorMessage } from '../core/errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printLine(text = ''): void {
  process.stdout.write(text + '\n');
}

export function failWith(err: unknown, json: boolean): never {
  const code = err instanceof FerryError ? err.code : 'IO_ERROR';
  const message = errorMessage(err);
  if (json) process.stderr.write(JSON.stringify({ error: { code, message } }) + '\n');
  else process.stderr.write(`ferry: ${message}\n`);
  process.exit(code === 'INVALID_CONFIG' || code === 'INVALID_PATH' ? 2 : 1);
}

