/** The source's current position, for status, verify and rewind/undo on the source (read with the capture account, read-only). */
import { openSession } from '../../apply/mysql/session.ts';
import { sourceStatus } from '../../capture/mysql/capture.ts';
import { describeChain } from '../../core/errors.ts';
import type { MysqlPosition } from '../../record/position.ts';
import type { SourceProbe } from '../../rollback/server.ts';
import type { Config } from '../config.ts';
import { captureReach } from '../run/capture-state.ts';

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

/** What rewind/undo on the source ask (rollback/server.ts SourceProbe): the source's position, capture's reach. */
export function sourceProbe(config: Config): SourceProbe {
  return { readSource: () => readSource(config), captureReach };
}
