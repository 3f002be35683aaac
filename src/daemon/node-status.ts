/** The status a running node publishes every second and `ferry status` reads. */
import type { FolderStatus } from '../engine/folder-sync.js';

export interface PeerRuntime {
  readonly deviceId: string;
  readonly connected: boolean;
  readonly address?: string;
  readonly lastSeen?: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface NodeRuntimeStatus {
  readonly pid: number;
  readonly running: boolean;
  readonly listen: string;
  readonly startedAt: string;
  readonly heartbeat: number;
  readonly folders: Record<string, FolderStatus>;
  readonly peers: Record<string, PeerRuntime>;
}

export const STATUS_KEY = 'node';
/** A status older than this means the node is gone (killed without a clean stop). */
export const STALE_AFTER_MS = 5000;
