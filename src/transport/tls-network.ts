/** The real network: the mutual-TLS peer server and dialer behind the Network interface. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AcceptHandlers, Network, NetworkListener } from '../protocol/network.js';
import type { PeerConnection } from '../protocol/connection.js';
import { formatHostPort } from './address.js';
import { dialPeer } from './dial.js';
import type { Identity } from './identity.js';
import type { Logger } from './logger.js';
import { PeerServer } from './peer-server.js';

const CONNECT_TIMEOUT_MS = 10_000;

export class TlsNetwork implements Network {
  constructor(
    private readonly identity: Identity,
    private readonly listenOn: { host: string; port: number },
    private readonly logger: Logger,
    /** Plain HTTP requests on the same port (the REST API); see PeerServerOptions.handleRequest. */
    private readonly handleRequest?: (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => void,
  ) {}

  async listen(handlers: AcceptHandlers): Promise<NetworkListener> {
    const server = await PeerServer.open({
      identity: this.identity,
      host: this.listenOn.host,
      port: this.listenOn.port,
      logger: this.logger,
      authorize: handlers.authorize,
      onConnection: handlers.onConnection,
      onRefused: handlers.onRefused,
      paused: handlers.paused,
      ...(this.handleRequest ? { handleRequest: this.handleRequest } : {}),
    });
    return { address: formatHostPort(server.address.host, server.address.port), close: () => server.close() };
  }

  dial(address: string, expectedDeviceId: string): Promise<PeerConnection> {
    return dialPeer({ address, expectedDeviceId, identity: this.identity, logger: this.logger, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  }
}
