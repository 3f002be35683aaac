/**
 * How a node reaches its peers: listen for authenticated connections and dial a peer at an
 * address, expecting a given device ID. The TLS transport implements it for real; the
 * in-memory network (memory-network.ts) implements it for simulations, where links can be
 * partitioned, stalled or made to corrupt bytes.
 */
import type { PeerConnection } from './connection.js';

export interface AcceptHandlers {
  /** Whether a device may connect (after its identity was verified). */
  authorize(deviceId: string, remoteAddress: string): boolean;
  onConnection(connection: PeerConnection): void;
  /** A device that authorize refused. */
  onRefused?(deviceId: string, remoteAddress: string): void;
  /** Whether an authorized device is paused here: refused for now, with PAUSED. */
  paused?(deviceId: string): boolean;
}

export interface NetworkListener {
  /** The address peers can dial ("host:port"). */
  readonly address: string;
  close(): Promise<void>;
}

export interface Network {
  listen(handlers: AcceptHandlers): Promise<NetworkListener>;
  /**
   * Connects to `address`; rejects with UNKNOWN_DEVICE when the other end is not
   * `expectedDeviceId`, PEER_UNAVAILABLE when it cannot be reached.
   */
  dial(address: string, expectedDeviceId: string): Promise<PeerConnection>;
}
