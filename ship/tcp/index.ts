/**
 * The embedded ship transport, public face: a shipper (TLS client, primary site) streams journal frames to a
 * receiver (TLS server, standby site), which acknowledges each batch only after its onFrames callback made it
 * durable. Transport only: no journal, cursor or config here (the journal ends, journalSource and MirrorSink, are
 * transport-neutral: ../mirror.ts). README.md beside this file has the protocol, the guarantees and what the wiring
 * must add. Import this file from outside ship/tcp; the parts:
 *
 *   protocol.ts    wire format, pure (encodeMessage, MessageDecoder; the HELLO body in protocol-hello.ts)
 *   connection.ts  one socket carrying messages: heartbeats, dead-link detection, backpressure; dial()
 *   identity.ts    mutual-TLS identity checks and refusal reasons, pure
 *   shipper.ts     the client: connect → HELLO → WELCOME(durable) → FRAMES from durable + 1 → ACKs, reconnecting
 *   receiver.ts    the server: authorize → HELLO → onHello → WELCOME → onFrames → ACK, one session per source
 *   certs.ts       CA and per-site certificates (tidemark certs; the witness uses them too)
 * MessageConnection, dial() and clientRefusal() are exported for other services on the same mutual-TLS links
 * (BLOB messages: the remote-site backup store, backup/store/site.ts).
 */
export {
  CA_CERT,
  CA_KEY,
  type CertsOptions,
  loadSiteTls,
  makeCerts,
  type TlsMaterial,
} from './certs.ts';
export { dial, MessageConnection } from './connection.ts';
export {
  certificateNames,
  clientRefusal,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_PORT,
  type LinkSecurity,
} from './identity.ts';
export type { BlobMessage, Message } from './protocol.ts';
export { type ReceiverOptions, ShipReceiver } from './receiver.ts';
export { type Shipper, type ShipperOptions, type ShipperStatus, startShipper } from './shipper.ts';
