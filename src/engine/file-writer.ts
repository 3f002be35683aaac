/**
 * Puts small downloaded files in place on the helper thread (core/helper-thread.ts). A pull of
 * many small files is bound by the receiver's main thread, and creating, writing, renaming and
 * stating each file took ~40 % of it (10,000 files of 4 KiB on the ext4 development VM). Here
 * they are made one after another on the helper thread (one thread: pool threads creating files
 * in one directory spin on its lock), while each fsync waits in the thread pool beside the
 * next files.
 *
 * The steps are the puller's (puller.ts): a temporary file beside the target, created exclusively
 * and owner-writable; the data, mtime and mode; fsync; then, only if nothing has appeared at the
 * target meanwhile, the atomic rename.
 */
import { defineHelperJob, runOnHelper } from '../core/helper-thread.js';
import { FerryError } from '../core/errors.js';
import type { StatKey } from '../index-store/sqlite-index-store.js';

defineHelperJob('write', `(() => {
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

  return ({ temp, target, data, mode, mtimeMs }, reply) => {
    let fd;
    const fail = (err) => {
      try { if (fd !== undefined) fs.closeSync(fd); } catch {}
      try { fs.unlinkSync(temp); } catch {}
      reply({ error: { code: err.code, message: err.message } });
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
    // In the thread pool: the next files are written meanwhile.
    fs.fsync(fd, (err) => {
      if (err) return fail(err);
      try {
        fs.closeSync(fd);
        fd = undefined;
        if (fs.lstatSync(target, { throwIfNoEntry: false })) return fail({ code: 'TARGET_EXISTS', message: 'target exists' });
        fs.renameSync(temp, target);
        const placed = fs.lstatSync(target, { throwIfNoEntry: false });
        reply({ written: statOf(written), placed: placed && statOf(placed) });
      } catch (err) {
        fail(err);
      }
    });
  };
})()`);

type Stat4 = [size: number, mtimeMs: number, ctimeMs: number, ino: number];
type WriterOut = { written: Stat4; placed?: Stat4 } | { error: { code?: string; message: string } };


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
  const out = await runOnHelper<WriterOut>('write', { temp: file.temp, target: file.target, data, mode: file.mode, mtimeMs: file.mtimeMs }, own ? [data.buffer as ArrayBuffer] : []);
  if ('error' in out) {
    if (out.error.code === 'TARGET_EXISTS') throw new FerryError('CHANGED_LOCALLY', `${file.path} changed locally during the download; will rescan`);
    throw new FerryError('IO_ERROR', `cannot write ${file.path}: ${out.error.message}`, { data: { errno: out.error.code } });
  }
  return { written: statKeyOf(out.written), placed: out.placed && statKeyOf(out.placed) };
}

function statKeyOf([size, mtimeMs, ctimeMs, ino]: Stat4): StatKey {
  return { size, mtimeMs, ctimeMs, ino };
}
