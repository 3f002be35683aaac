/**
 * Puts small downloaded files in place on a thread of their own. Creating a file is the costly
 * part of a pull of many small files: on the ext4 development VM `open(O_CREAT)` alone took
 * 0.2 ms of the main thread per file, 2.2 s of the 7 s the main thread spent on 10,000 files of
 * 4 KiB, while the other core waited. Here the writer thread creates, writes and renames one file
 * after another (one thread: no spinning on a directory's lock), and each fsync waits in the
 * thread pool meanwhile, so that the kernel commits several files' journal entries together.
 *
 * The steps are the puller's (puller.ts): a temporary file beside the target, created exclusively
 * and owner-writable; the data, mtime and mode; fsync; then, only if nothing has appeared at the
 * target meanwhile, the atomic rename.
 */
import { IdleWorker } from '../core/idle-worker.js';
import { FerryError } from '../core/errors.js';
import type { StatKey } from '../index-store/sqlite-index-store.js';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const statOf = (s) => [s.size, s.mtimeMs, s.ctimeMs, s.ino];

// A temporary file already there is a download of an older version of this path (or anything
// else left at Ferry's name): the whole new content is at hand, so it is replaced.
function createTemp(temp, mode) {
  try {
    return fs.openSync(temp, 'wx', mode);
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
    fs.unlinkSync(temp);
    return fs.openSync(temp, 'wx', mode);
  }
}

parentPort.on('message', ({ id, temp, target, data, mode, mtimeMs }) => {
  let fd;
  const fail = (err) => {
    try { if (fd !== undefined) fs.closeSync(fd); } catch {}
    try { fs.unlinkSync(temp); } catch {}
    parentPort.postMessage({ id, out: { error: { code: err.code, message: err.message } } });
  };
  let written;
  try {
    fd = createTemp(temp, (mode & 0o777) | 0o600);
    for (let done = 0; done < data.length; ) done += fs.writeSync(fd, data, done, data.length - done, done);
    fs.futimesSync(fd, mtimeMs / 1000, mtimeMs / 1000);
    written = fs.fstatSync(fd);
    if ((written.mode & 0o7777) !== mode) fs.fchmodSync(fd, mode);
  } catch (err) {
    return fail(err);
  }
  fs.fsync(fd, (err) => {
    if (err) return fail(err);
    try {
      fs.closeSync(fd);
      fd = undefined;
      if (fs.lstatSync(target, { throwIfNoEntry: false })) return fail({ code: 'TARGET_EXISTS', message: 'target exists' });
      fs.renameSync(temp, target);
      const placed = fs.lstatSync(target, { throwIfNoEntry: false });
      parentPort.postMessage({ id, out: { written: statOf(written), placed: placed && statOf(placed) } });
    } catch (err) {
      fail(err);
    }
  });
});
`;

type Stat4 = [size: number, mtimeMs: number, ctimeMs: number, ino: number];
type WriterOut = { written: Stat4; placed?: Stat4 } | { error: { code?: string; message: string } };

/** The one writer thread every folder shares. */
export const fileWriter = new IdleWorker<WriterOut>(WORKER_SOURCE, 'ferry-file-writer');

export interface NewFile {
  /** The path in the folder (for messages). */
  readonly path: string;
  /** Absolute path of the temporary file beside the target. */
  readonly temp: string;
  /** Absolute path of the target, where nothing may be when it is renamed into place. */
  readonly target: string;
  /** The file's whole content (its buffer is handed to the writer thread, not copied). */
  readonly data: Uint8Array;
  readonly mode: number;
  readonly mtimeMs: number;
}

/**
 * Writes `file` and renames it into place. Returns the stat of the file as written, and as found
 * at the target after the rename (undefined when it was gone again at once). Throws
 * CHANGED_LOCALLY when something appeared at the target, IO_ERROR for anything else; either way
 * no temporary file is left behind.
 */
export async function writeNewFile(file: NewFile): Promise<{ written: StatKey; placed?: StatKey }> {
  const { data } = file;
  const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  const out = await fileWriter.call({ temp: file.temp, target: file.target, data, mode: file.mode, mtimeMs: file.mtimeMs }, own ? [data.buffer] : []);
  if ('error' in out) {
    if (out.error.code === 'TARGET_EXISTS') throw new FerryError('CHANGED_LOCALLY', `${file.path} changed locally during the download; will rescan`);
    throw new FerryError('IO_ERROR', `cannot write ${file.path}: ${out.error.message}`, { data: { errno: out.error.code } });
  }
  return { written: statKeyOf(out.written), placed: out.placed && statKeyOf(out.placed) };
}

function statKeyOf([size, mtimeMs, ctimeMs, ino]: Stat4): StatKey {
  return { size, mtimeMs, ctimeMs, ino };
}
