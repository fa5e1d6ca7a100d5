import { describe, expect, it } from 'vitest';
import { qualifiedName, quoteIdent, quoteLiteral } from './sql.ts';

describe('quoting', () => {
  it('always quotes identifiers and doubles embedded double quotes', () => {
    expect(quoteIdent('t')).toBe('"t"');
    expect(quoteIdent('Mixed Case')).toBe('"Mixed Case"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(qualifiedName('s"', 'select')).toBe('"s"""."select"');
  });

  it("doubles single quotes and uses E'' with doubled backslashes", () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('a\\b')).toBe(" E'a\\\\b'");
    expect(() => quoteLiteral('nul\u0000')).toThrow(RangeError);
  });
});
