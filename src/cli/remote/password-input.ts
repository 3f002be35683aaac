/**
 * Reading a password: all of standard input with `--password-stdin` (one trailing newline
 * removed), else a prompt on the terminal without echo. Never from an argument, where it
 * would show in `ps` and shell history.
 */
import { FerryError } from '../../core/errors.js';

export async function readPassword(opts: { stdin: boolean; confirm?: boolean; prompt?: string }): Promise<string> {
  if (opts.stdin) return readStdinSecret();
  if (!process.stdin.isTTY) {
    throw new FerryError('INVALID_CONFIG', 'no terminal to ask for a password: pass it on standard input with --password-stdin');
  }
  const first = await prompt(opts.prompt ?? 'Password: ');
  if (opts.confirm) {
    const again = await prompt('Repeat password: ');
    if (again !== first) throw new FerryError('INVALID_CONFIG', 'the passwords do not match');
  }
  return first;
}

export async function readStdinSecret(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new FerryError('INVALID_CONFIG', 'standard input is too long for a password or token');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (text === '') throw new FerryError('INVALID_CONFIG', 'standard input is empty: expected a password or token');
  return text;
}

function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let text = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new FerryError('INVALID_CONFIG', 'interrupted'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}
