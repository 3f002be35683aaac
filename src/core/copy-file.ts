/**
 * Copies a file that another program may be changing meanwhile. Node's copyFile (libuv) loops
 * for ever when the source shrinks during the copy: copy_file_range returns 0 at the new end,
 * short of the size stat'ed at the start, and libuv asks again. A simulation that truncated a
 * file while Ferry cloned it left a thread-pool thread spinning at 100 % and the folder's pull
 * waiting on it for good. So: a reflink where the file system has them (one call, all or
 * nothing), else a read/write loop that stops at the end of the file wherever it is by then.
 * The destination is created exclusively (EEXIST if something is there) with the source's mode.
 */
import { constants } from 'node:fs';
import { copyFile, open } from 'node:fs/promises';

const COPY_CHUNK_BYTES = 1024 * 1024;

export async function copyFileSafely(src: string, dst: string): Promise<void> {
  try {
    return await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
  } catch (err) {
    if (!cannotClone(err)) throw err;
  }
  const from = await open(src, 'r');
  try {
    const to = await open(dst, 'wx', (await from.stat()).mode & 0o7777);
    try {
      const buf = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
      for (let at = 0; ; ) {
        const { bytesRead } = await from.read(buf, 0, buf.length, at);
        if (bytesRead === 0) return;
        for (let done = 0; done < bytesRead; ) done += (await to.write(buf, done, bytesRead - done, at + done)).bytesWritten;
        at += bytesRead;
      }
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

/** A reflink refused because the file system (or the pair of them) cannot: copy instead. */
function cannotClone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV' || code === 'EINVAL' || code === 'ENOSYS' || code === 'ENOTTY';
}
