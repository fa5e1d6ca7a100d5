/** The source's current position, for status, verify, failback and rewind/undo on the source (read-only, capture account). */
import { describeChain } from '../../core/errors.ts';
import type { MysqlPosition } from '../../record/position.ts';
import { openSourceConnection, type SourceEndpoint } from './connection.ts';
import { sourceStatus } from './status.ts';

export interface SourceRead {
  position: MysqlPosition | null;
  error?: string;
}

export async function readSource(source: SourceEndpoint): Promise<SourceRead> {
  try {
    const conn = await openSourceConnection(source, 'reading the source position');
    try {
      return { position: await sourceStatus(conn.promise) };
    } finally {
      await conn.close();
    }
  } catch (err) {
    return { position: null, error: describeChain(err) };
  }
}
