/**
 * The Kafka ship transport, public face (README.md beside this file): a shipper producing the journal's frames
 * into one topic partition, and a receiver consuming them into a FramesSink (../frame.ts) from the standby's own
 * durable LSN. Import this file from outside ship/kafka; the parts:
 *
 *   client.ts     kafkajs client, topic settings, offsets, failures as TidemarkErrors
 *   codec.ts      a frame as one or more messages (chunks with CRCs), pure
 *   resume.ts     where a session resumes (shipper: from the partition's end; receiver: from its durable LSN), pure
 *   sequencer.ts  chunks back into consecutive frames: skips, seeks, gaps, pure
 *   shipper.ts    startKafkaShipper (a SessionLoop, ../session.ts)
 *   receiver.ts   startKafkaReceiver (a SessionLoop)
 */
export { createKafka, ensureTopic, type KafkaConnection } from './client.ts';
export { encodeFrame } from './codec.ts';
export {
  type KafkaReceiver,
  type KafkaReceiverOptions,
  type KafkaReceiverStatus,
  startKafkaReceiver,
} from './receiver.ts';
export { type KafkaShipper, type KafkaShipperOptions, startKafkaShipper } from './shipper.ts';
