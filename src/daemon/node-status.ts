/** The status a running node publishes every second and `ferry status` reads. */
import type { FolderStatus } from '../engine/folder-sync.js';

export interface PeerRuntime {
  readonly deviceId: string;
  readonly connected: boolean;
  readonly address?: string;
  /** Where LAN discovery last heard the peer announce itself. */
  readonly discoveredAddress?: string;
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
  /** `ferry start --max-send-rate` / `--max-recv-rate`, bytes a second; absent when unlimited. */
  readonly maxSendRate?: number;
  readonly maxReceiveRate?: number;
  /** Whether the limits apply to peers on the LAN too (`ferry limits --lan on`). */
  readonly limitLan?: boolean;
  /** Devices announcing themselves on the LAN that are not configured as peers. */
  readonly nearby?: readonly NearbyDevice[];
}

export interface NearbyDevice {
  readonly deviceId: string;
  readonly address: string;
  readonly lastSeen: string;
}

export const STATUS_KEY = 'node';
/** A status older than this means the node is gone (killed without a clean stop). */
export const STALE_AFTER_MS = 5000;
