/**
 * The connection to one authenticated peer, as the engine sees it. The TLS transport
 * (transport/) and the in-process simulated network implement it; the engine depends only
 * on this interface, so the same engine code runs over both.
 *
 * A message is a JSON-able header plus an optional binary payload. `request` correlates a
 * reply to a request; `onRequest` handlers answer with a header and optional payload, or
 * throw (the error reaches the requester as a FerryError with the same code and message).
 */
export interface Message {
  readonly header: Record<string, unknown>;
  readonly payload?: Buffer;
}

export interface ConnectionStats {
  /** Bytes received and sent on the wire (after compression and TLS), since connecting. */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface PeerConnection {
  /** The peer's verified device ID. */
  readonly deviceId: string;
  readonly remoteAddress: string;
  readonly stats: ConnectionStats;
  readonly closed: boolean;

  /** Fire-and-forget message. Throws CLOSED when the connection is gone. */
  send(message: Message): void;

  /** Sends a request and resolves with the reply; rejects on error reply, close or timeout. */
  request(message: Message, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Message>;

  /** Handlers are set once by the engine right after the connection is established. */
  onMessage(handler: (message: Message) => void): void;
  onRequest(handler: (message: Message) => Promise<Message>): void;
  onClose(handler: (reason: Error | undefined) => void): void;

  close(reason?: Error): void;
}
