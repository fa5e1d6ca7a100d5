import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { commit } from '../test/fixtures/ship-journal.ts';
import { failureText, positionKey } from './apply-failure.ts';

describe('failure text', () => {
  const err = new TidemarkError("insert of 1 row(s) in `db`.`t` from seq 11: Duplicate entry '1'", {
    code: 'APPLY_DIVERGED',
  });
  const unit = { firstLsn: 9n, commitLsn: 10n, firstSeq: 11n, commit: commit(12n, 'tx', 0), changes: {} };

  it('names the failing transaction and every way past it', () => {
    const t = failureText('replica', err, unit, 60_000);
    expect(t).toContain('target replica: apply stopped at the transaction seq 11–12 (journal LSN 9–10');
    expect(t).toContain("Duplicate entry '1'");
    expect(t).toContain('`tidemark skip --target replica --seq 11`');
    expect(t).toContain('`tidemark run --rebaseline`');
    expect(t).toMatch(/exclude the table \(source\.exclude\) and `tidemark run --rebaseline`/);
    expect(t).toContain('up to every 60 s');
  });

  it('a journal no longer retained names the rebaseline', () => {
    const gone = new TidemarkError('journal j: LSN 5 is no longer retained', { code: 'JOURNAL_GONE' });
    expect(failureText('r', gone, null, 60_000)).toMatch(/To recover: `tidemark run --rebaseline`/);
  });

  it('positions compare as seq/lsn', () => {
    expect(positionKey(null)).toBe('none');
    expect(positionKey({ seq: 4n, lsn: 3n, position: null, commitTimeUs: null, phase: null })).toBe('4/3');
  });
});
