import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { applyMetrics } from './apply-metrics.ts';

describe('apply metrics', () => {
  it('several appliers share one registry, labelled by target and source', async () => {
    const reg = new Registry();
    const a = applyMetrics(reg, { target: 'r1', source: 's' });
    const b = applyMetrics(reg, { target: 'r2', source: 's' });
    a.transactions(3);
    a.rows(10);
    b.transactions(1);
    a.lastCommitTimeUs(1_700_000_000_500_000n);
    b.state('failed', 'APPLY_DIVERGED');
    const text = await reg.metrics();
    expect(text).toContain('tidemark_apply_target_state{target="r2",source="s",state="failed"} 1');
    expect(text).toContain('tidemark_apply_target_state{target="r2",source="s",state="ok"} 0');
    expect(text).toContain('tidemark_apply_failures_total{target="r2",source="s",code="APPLY_DIVERGED"} 1');
    expect(text).toContain('tidemark_apply_transactions_total{target="r1",source="s"} 3');
    expect(text).toContain('tidemark_apply_transactions_total{target="r2",source="s"} 1');
    expect(text).toContain('tidemark_apply_rows_total{target="r1",source="s"} 10');
    expect(text).toContain('tidemark_apply_last_commit_time_seconds{target="r1",source="s"} 1700000000.5');
  });
});
