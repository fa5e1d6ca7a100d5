/**
 * Running one journal DDL statement on the replica. The caller has recorded the DDL as pending (committed)
 * before, and records it as applied after (see README.md, "DDL"). `rerun` says this very DDL was already pending
 * when the applier started: it may or may not have run before the crash, so errors meaning "its effect is already
 * there" (errors.ts DDL_ALREADY_DONE_ERRNO) count as success — only then.
 */
import type { Logger } from 'pino';
import type { DdlEntry } from '../../record/record.ts';
import { isDdlAlreadyDone } from './errors.ts';
import { serverFields } from '../../mysql/errors.ts';
import type { QueryFn } from './exec.ts';
import { useSchema } from '../../mysql/sql.ts';

export async function executeDdl(q: QueryFn, e: DdlEntry, rerun: boolean, log: Logger): Promise<void> {
  if (e.schema !== '') {
    try {
      await q('use', useSchema(e.schema));
    } catch (err) {
      // The statement may still work if it names its schemas (e.g. CREATE DATABASE while in a filtered schema).
      if (serverFields(err).errno !== 1049) throw err;
      log.warn({ seq: e.seq.toString(), schema: e.schema }, 'DDL default schema missing on the replica');
    }
  }
  try {
    await q('ddl', e.sql);
  } catch (err) {
    if (!(rerun && isDdlAlreadyDone(err))) throw err;
    log.warn(
      { seq: e.seq.toString(), errno: serverFields(err).errno },
      'pending DDL had already run before the restart; treated as applied',
    );
  }
}
