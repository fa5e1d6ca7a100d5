import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASELINE_LEDGER_FILE, baselineLedger } from './baseline-ledger.ts';

const journal = () => mkdtempSync(join(tmpdir(), 'tm-ledger-'));

describe('baseline ledger', () => {
  it('keeps the union of what unfinished baselines recorded until cleared', async () => {
    const dir = journal();
    const l = baselineLedger(dir);
    expect(await l.tables()).toEqual([]);
    await l.record([
      { schema: 'a', table: 't1' },
      { schema: 'a', table: 't2' },
    ]);
    await l.record([
      { schema: 'a', table: 't2' },
      { schema: 'b', table: 't1' },
    ]);
    expect(await baselineLedger(dir).tables()).toEqual([
      { schema: 'a', table: 't1' },
      { schema: 'a', table: 't2' },
      { schema: 'b', table: 't1' },
    ]);
    expect(JSON.parse(readFileSync(join(dir, 'capture', BASELINE_LEDGER_FILE), 'utf8')).tables).toHaveLength(3);
    await l.clear();
    expect(await l.tables()).toEqual([]);
    await l.clear(); // nothing to clear: no error
  });

  it('refuses a damaged file, naming it and what it is for', async () => {
    const dir = journal();
    mkdirSync(join(dir, 'capture'));
    writeFileSync(join(dir, 'capture', BASELINE_LEDGER_FILE), '{"tables":[{"schema":1}]}');
    await expect(baselineLedger(dir).tables()).rejects.toThrow(
      /baseline-tables\.json is damaged: expected .*did not finish/,
    );
    writeFileSync(join(dir, 'capture', BASELINE_LEDGER_FILE), '{"tab');
    await expect(baselineLedger(dir).record([])).rejects.toMatchObject({ code: 'CORRUPT' });
  });
});
