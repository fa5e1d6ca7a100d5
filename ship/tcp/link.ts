/**
 * The embedded ship transport: a shipper (TLS client, primary site) streams journal frames to a receiver (TLS
 * server, standby site), which acknowledges each batch only after its onFrames callback made it durable.
 * Transport only: no journal, cursor or config here. README.md beside this file has the protocol, the
 * guarantees and what the wiring must add. This is the public face; the parts:
 *
 *   protocol.ts    wire format, pure (encodeMessage, MessageDecoder; the HELLO body in protocol-hello.ts)
 *   connection.ts  one socket carrying messages: heartbeats, dead-link detection, backpressure; dial()
 *   identity.ts    mutual-TLS identity checks and refusal reasons, pure
 *   shipper.ts     the client: connect → HELLO → WELCOME(durable) → FRAMES from durable + 1 → ACKs, reconnecting
 *   receiver.ts    the server: authorize → HELLO → onHello → WELCOME → onFrames → ACK, one session per source
 *   mirror.ts      the journal ends: journalSource (primary, durable frames only) and MirrorSink (standby copy)
 *   certs.ts       CA and per-site certificates (tidemark certs)
 *   fault-proxy.ts a TCP proxy that cuts, drops and damages links, for tests
 */
export { type CertsOptions, loadSiteTls, makeCerts, type TlsMaterial } from './certs.ts';
export { DEFAULT_HEARTBEAT_MS, DEFAULT_PORT, type LinkSecurity } from './identity.ts';
export { journalSource, MirrorSink, type MirrorSinkOptions, type MirrorStatus } from './mirror.ts';
export { type ReceiverOptions, type ReceiverSessionInfo, ShipReceiver } from './receiver.ts';
export { type Shipper, type ShipperOptions, type ShipperStatus, startShipper } from './shipper.ts';
export type { HelloBranch, TruncationMark, WireFrame } from './protocol.ts';
