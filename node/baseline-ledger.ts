/**
 * The engine seam's BaselineLedger (engine/source.ts) as a small durable JSON file beside the capture's read state:
 * `<journal>/capture/baseline-tables.json`, `{"tables":[{"schema":…,"table":…},…]}`. Written once per whole
 * baseline attempt (before its first table's DDL is journaled) and removed when a baseline finished.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError } from '../core/errors.ts';
import { fsyncDir } from '../core/durable-file.ts';
import type { BaselineLedger, LedgerTable } from '../engine/source.ts';
import { CAPTURE_STATE_DIR } from './capture-state.ts';
import { readJsonFile, writeJsonFile } from './state-files.ts';

export const BASELINE_LEDGER_FILE = 'baseline-tables.json';

const key = (t: LedgerTable) => JSON.stringify([t.schema, t.table]);

/** The file's tables; absent: none. A file that is not the expected JSON stops capture with what to do. */
async function readLedger(file: string): Promise<LedgerTable[]> {
  let raw: unknown;
  try {
    raw = await readJsonFile(file, { damaged: 'throw' });
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    raw = { tables: 'not JSON' };
  }
  if (raw === null) return [];
  const list = (raw as { tables?: unknown }).tables;
  if (!Array.isArray(list) || !list.every((t) => typeof t?.schema === 'string' && typeof t?.table === 'string')) {
    throw new TidemarkError(
      `${file} is damaged: expected {"tables":[{"schema":"…","table":"…"}]}. It lists the tables of a baseline ` +
        'that did not finish; remove it only if the targets are re-seeded anyway (the next baseline then cannot ' +
        'drop tables the unfinished one left behind)',
      { code: 'CORRUPT' },
    );
  }
  return (list as LedgerTable[]).map((t) => ({ schema: t.schema, table: t.table }));
}

export function baselineLedger(journalDir: string): BaselineLedger {
  const dir = join(journalDir, CAPTURE_STATE_DIR);
  const file = join(dir, BASELINE_LEDGER_FILE);
  return {
    tables: () => readLedger(file),
    async record(add) {
      const all = new Map((await readLedger(file)).map((t) => [key(t), t]));
      for (const t of add) all.set(key(t), { schema: t.schema, table: t.table });
      await writeJsonFile(dir, BASELINE_LEDGER_FILE, { tables: [...all.values()] }, { durable: true });
    },
    async clear() {
      try {
        await unlink(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // nothing recorded: every start's case
        throw err;
      }
      await fsyncDir(dir);
    },
  };
}
