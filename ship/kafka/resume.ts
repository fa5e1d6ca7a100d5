/**
 * Where a Kafka shipper (re)starts and where a receiver starts reading. Pure: no I/O.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { Chunk } from './codec.ts';
import type { PartitionOffsets } from './client.ts';

/**
 * The LSN the shipper publishes next, from the partition's last message: its LSN + 1 when it is the last chunk
 * of its frame, else the same LSN again (a frame whose chunks a dead shipper did not finish is sent again whole;
 * the receiver starts a frame over at part 0). An empty partition starts at `firstLsn`. A partition whose
 * messages retention deleted entirely cannot say where the stream stands: refused (not retriable).
 */
export function resumeLsn(offsets: PartitionOffsets, last: Chunk | null, firstLsn: bigint, topic: string): bigint {
  if (offsets.high === 0n) return firstLsn;
  if (offsets.high === offsets.low || last === null) {
    throw new TidemarkError(
      `kafka topic ${topic}: partition 0 holds no message but its offsets reach ${offsets.high} (retention deleted ` +
        `them), so the shipper cannot tell which LSN comes next; give the topic a longer retention.ms, or recreate ` +
        `it and rebaseline the standbys`,
      { code: 'KAFKA_RESUME_UNKNOWN', retriable: false, context: { topic, high: offsets.high } },
    );
  }
  if (last.offset !== offsets.high - 1n) {
    throw new TidemarkError(`kafka topic ${topic}: asked for offset ${offsets.high - 1n}, got ${last.offset}`, {
      code: 'KAFKA_UNAVAILABLE',
      retriable: true,
    });
  }
  return last.part === last.parts - 1 ? last.lsn + 1n : last.lsn;
}

/**
 * The unit end the partition is known to hold up to, from its last message: its LSN when that message completes
 * a frame (`from` is then past it) that ends a unit, else null (the rest of the unit follows from `from`).
 */
export function resumeUnitLsn(last: Chunk | null, from: bigint): bigint | null {
  return last?.endOfUnit && last.part === last.parts - 1 && last.lsn + 1n === from ? last.lsn : null;
}

/**
 * The offset a receiver seeks to when a session starts. The committed offset of its group is a hint (it is
 * committed only after frames are durable, but the standby's durable LSN may have gone back since); the
 * sequencer checks the LSNs it finds there and seeks back when needed. Without a hint: the start of the
 * partition for a receiver that has nothing yet, else its last message (from which the sequencer jumps back by
 * the LSN distance, exact when nothing was split or duplicated).
 */
export function startOffset(offsets: PartitionOffsets, hint: bigint | null, durableLsn: bigint): bigint {
  if (offsets.high <= offsets.low) return offsets.low;
  if (hint !== null && hint >= offsets.low && hint < offsets.high) return hint;
  return durableLsn === 0n ? offsets.low : offsets.high - 1n;
}
