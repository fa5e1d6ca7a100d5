/**
 * SQL text for the statement classifiers (capture/mysql ddl.ts, dml.ts, ddl-rewrite.ts, ddl-versioning.ts; objects.ts
 * here) and the statements capture writes: the tokenizer, a cursor over its tokens, and table references. Identifier quoting is the one
 * MySQL layer's (mysql/sql.ts quoteIdent). Pure.
 */
import { qualified as qualifiedName } from './sql.ts';

export interface TableRef {
  readonly schema: string;
  readonly table: string;
}

/** `schema`.`table` of a table reference (quoting: mysql/sql.ts). */
export function qualified(t: TableRef): string {
  return qualifiedName(t.schema, t.table);
}

/** `at`: offset of the token's first character in the statement (objects.ts cuts a trigger body there). */
export type Token =
  | { readonly t: 'word'; readonly v: string; readonly up: string; readonly at: number }
  | { readonly t: 'ident'; readonly v: string; readonly at: number }
  | { readonly t: 'string'; readonly at: number }
  | { readonly t: 'punct'; readonly v: string; readonly at: number };

const WORD = /[A-Za-z0-9_$\u0080-\uffff]/u;

/** Splits SQL into tokens; string literals are kept as opaque tokens (their text is never needed). */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let execDepth = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') {
      i++;
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && /[\s]/.test(sql[i + 2] ?? ' '))) {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const exec = /^\/\*(M?!)(\d{5,6})?/.exec(sql.slice(i, i + 10));
      if (exec) {
        execDepth++;
        i += exec[0].length;
      } else {
        const end = sql.indexOf('*/', i + 2);
        i = end < 0 ? n : end + 2;
      }
    } else if (c === '*' && sql[i + 1] === '/' && execDepth > 0) {
      execDepth--;
      i += 2;
    } else if (c === '`') {
      const at = i;
      let v = '';
      i++;
      while (i < n) {
        if (sql[i] === '`') {
          if (sql[i + 1] === '`') {
            v += '`';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += sql[i];
        i++;
      }
      out.push({ t: 'ident', v, at });
    } else if (c === "'" || c === '"') {
      const at = i;
      i++;
      while (i < n) {
        if (sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) {
          i++;
          break;
        } else i++;
      }
      out.push({ t: 'string', at });
    } else if (WORD.test(c)) {
      let j = i + 1;
      while (j < n && WORD.test(sql[j]!)) j++;
      const v = sql.slice(i, j);
      out.push({ t: 'word', v, up: v.toUpperCase(), at: i });
      i = j;
    } else {
      out.push({ t: 'punct', v: c, at: i });
      i++;
    }
  }
  return out;
}

/** A cursor over tokens with the few look-ahead helpers the grammars (ddl.ts, dml.ts) need. */
export class Cursor {
  readonly toks: readonly Token[];
  pos = 0;
  constructor(toks: readonly Token[]) {
    this.toks = toks;
  }
  peekWord(offset = 0): string | undefined {
    const t = this.toks[this.pos + offset];
    return t?.t === 'word' ? t.up : undefined;
  }
  /** Consumes the given keyword sequence if it is next. */
  accept(...words: string[]): boolean {
    for (const [k, w] of words.entries()) if (this.peekWord(k) !== w) return false;
    this.pos += words.length;
    return true;
  }
  acceptPunct(p: string): boolean {
    const t = this.toks[this.pos];
    if (t?.t === 'punct' && t.v === p) {
      this.pos++;
      return true;
    }
    return false;
  }
  /** Reads one identifier part (bare word or backquoted). */
  ident(): string | undefined {
    const t = this.toks[this.pos];
    if (t?.t === 'ident' || t?.t === 'word') {
      this.pos++;
      return t.v;
    }
    return undefined;
  }
  /** Reads [schema.]table, qualifying with the default schema. */
  tableName(defaultSchema: string): TableRef | undefined {
    const first = this.ident();
    if (first === undefined) return undefined;
    if (this.acceptPunct('.')) {
      const second = this.ident();
      if (second === undefined) return undefined;
      return { schema: first, table: second };
    }
    return { schema: defaultSchema, table: first };
  }
  /** MariaDB's WAIT n / NOWAIT lock options after a table name. */
  skipWait(): void {
    if (this.accept('NOWAIT')) return;
    if (this.peekWord() === 'WAIT') this.pos += 2;
  }
  done(): boolean {
    return this.pos >= this.toks.length;
  }
}
