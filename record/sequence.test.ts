import { describe, expect, it } from 'vitest';
import type { Column } from './record.ts';
import { isSequenceShape, isSequenceState, SEQUENCE_COLUMNS } from './sequence.ts';

const seqCols: Column[] = SEQUENCE_COLUMNS.map(([name, type]) => ({ name, type }));

describe('sequence state rows', () => {
  it('are keyless inserts into a table with exactly the sequence columns', () => {
    expect(isSequenceShape(seqCols)).toBe(true);
    expect(isSequenceState({ op: 'insert', pk: [], columns: seqCols })).toBe(true);
    expect(isSequenceState({ op: 'update', pk: [], columns: seqCols })).toBe(false);
    expect(isSequenceState({ op: 'insert', pk: ['next_not_cached_value'], columns: seqCols })).toBe(false);
    expect(isSequenceShape(seqCols.slice(1))).toBe(false);
    expect(isSequenceShape([...seqCols.slice(0, 7), { name: 'cycle_count', type: 'int' }])).toBe(false);
    expect(isSequenceShape([...seqCols.slice(0, 7), { name: 'cycles', type: 'bigint' }])).toBe(false);
  });
});
