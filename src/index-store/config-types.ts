/**
 * How a folder syncs: both ways; `send-only`: changes from peers are not applied here (the
 * device holds the master copy); `receive-only`: changes made here are not sent to peers.
 */
export const FOLDER_MODES = ['send-receive', 'send-only', 'receive-only'] as const;
export type FolderMode = (typeof FOLDER_MODES)[number];

/** Configuration records as the index store keeps them. */
export interface FolderConfig {
  readonly id: string;
  readonly path: string;
  /** Random ID of this node's index for the folder; changes if the index is recreated. */
  readonly indexId: string;
  readonly versionsKeepDays: number;
  readonly rescanSeconds: number;
  /** Paused by the user: not scanned, pulled or offered to peers. */
  readonly paused: boolean;
  readonly mode: FolderMode;
  /** Devices the folder is shared with. */
  readonly devices: readonly string[];
}

export interface PeerConfig {
  readonly deviceId: string;
  readonly name: string;
  /** host:port addresses to dial. */
  readonly addresses: readonly string[];
  /** Paused by the user: neither dialed nor let in until resumed. */
  readonly paused: boolean;
}
