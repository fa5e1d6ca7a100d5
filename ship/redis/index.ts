/**
 * The Redis Streams ship transport, public face (README.md beside this file): a shipper appending the journal's
 * frames to one stream (XADD with the LSN as entry ID), a receiver reading them with a consumer group into a
 * FramesSink (../frame.ts) from the standby's own durable LSN, and the trim that keeps what a group still needs.
 * Import this file from outside ship/redis; the parts:
 *
 *   client.ts    ioredis connection, durability settings check, stream and group state
 *   codec.ts     a frame as one stream entry (CRC), replies parsed, the trim point, pure
 *   shipper.ts   startRedisShipper (a SessionLoop, ../session.ts)
 *   receiver.ts  startRedisReceiver (a SessionLoop)
 *   trim.ts      trimSafely: XTRIM below what every group acknowledged as complete units
 */
export { connectRedis, type DurabilityCheck, type RedisConnection } from './client.ts';
export { frameCrc, xaddArgs } from './codec.ts';
export { type RedisReceiver, type RedisReceiverOptions, startRedisReceiver } from './receiver.ts';
export { type RedisShipper, type RedisShipperOptions, startRedisShipper } from './shipper.ts';
export { type TrimOptions, type TrimResult, trimSafely } from './trim.ts';
