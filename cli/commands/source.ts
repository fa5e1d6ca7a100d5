/** The source's current position, for status and verify (read with the capture account, read-only). */
import { openSession } from '../../apply/mysql/session.ts';
import { sourceStatus } from '../../capture/mysql/capture.ts';
import { describeChain } from '../../core/errors.ts';
import type { MysqlPosition } from '../../record/position.ts';
import type { Config } from '../config.ts';

export interface SourceRead {
  position: MysqlPosition | null;
  error?: string;
}

export async function readSource(config: Config): Promise<SourceRead> {
  try {
    const conn = await openSession(config.source, { apply: false });
    try {
      return { position: await sourceStatus(conn) };
    } finally {
      await conn.end().catch(() => {});
    }
  } catch (err) {
    return { position: null, error: describeChain(err) };
  }
}
