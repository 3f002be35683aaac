/**
 * Free space on the disk a folder lives on. Ferry never fills a disk: a download starts only
 * when it fits in what is free beyond a reserve of 1 % of the disk (Syncthing's default too),
 * so the user can still save their own files when a large one arrives.
 */
import { statfsSync } from 'node:fs';

/** Share of a disk's size that downloads leave free. */
export const KEEP_FREE_RATIO = 0.01;

export interface DiskSpace {
  /** Bytes an unprivileged process may still write. */
  readonly available: number;
  /** Bytes Ferry leaves free on this disk. */
  readonly keep: number;
}

export function diskSpace(dir: string): DiskSpace {
  const s = statfsSync(dir);
  return { available: s.bavail * s.bsize, keep: Math.ceil(s.blocks * s.bsize * KEEP_FREE_RATIO) };
}

/**
 * Bytes that downloads under way are still to write, per disk (device number), shared by all
 * folders of the process: two folders on one disk must not both count on the same free space.
 */
const pendingByDisk = new Map<number, number>();

export function pendingWrites(disk: number): number {
  return pendingByDisk.get(disk) ?? 0;
}

/** Counts `bytes` as under way on `disk` until the returned function is called (once). */
export function reserveWrites(disk: number, bytes: number): () => void {
  pendingByDisk.set(disk, pendingWrites(disk) + bytes);
  return () => {
    const left = pendingWrites(disk) - bytes;
    if (left > 0) pendingByDisk.set(disk, left);
    else pendingByDisk.delete(disk);
  };
}

/** A write that failed because the disk (or the user's quota) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
