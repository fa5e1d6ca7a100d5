/**
 * Users, roles and grants as SQL text (issue #16, opt-in through `source.accounts`). Pure; the one place that
 * knows the account statements' shapes, used by capture (classifying binlog Query events, capture/mysql/ddl.ts;
 * the baseline's account unit, capture/mysql/baseline-accounts.ts) and by every place that shows DDL text.
 *
 *   parseAccountList     the config's list: "user@host" is an account, a bare "name" a role.
 *   parseAccountDdl      CREATE/ALTER/DROP/RENAME USER, CREATE/DROP ROLE, GRANT, REVOKE, SET PASSWORD FOR,
 *                        SET DEFAULT ROLE … FOR: the accounts the statement changes (a GRANT's/REVOKE's grantees,
 *                        not the roles granted), and whether it names the session's own account (no FOR,
 *                        CURRENT_USER, PUBLIC: never replicated, it cannot be told which account that is).
 *   isListed             an account named by a statement is one of the listed ones (a bare name in a statement is
 *                        a role or user@'%').
 *   redactSecrets        a statement that may carry a password or a hash (IDENTIFIED …, PASSWORD …, USING …) with
 *                        every string literal that is not part of an account name replaced by '<redacted>': what
 *                        logs, errors and `tidemark log` show in place of such a statement.
 *   redactServerMessage  the same for a server error message, whose "near '…'" quotes the statement.
 */
import { Cursor, type Token, tokenize } from './sql-text.ts';
import { quoteString } from './sql.ts';

/** An account as a statement names it; `host` undefined when only a name is given (a role, or user@'%'). */
export interface AccountName {
  readonly user: string;
  readonly host?: string;
}

export interface AccountDdl {
  /** Keyword label, safe to log ("GRANT", "ALTER USER", …). */
  readonly statement: string;
  readonly accounts: readonly AccountName[];
  /** The statement also names the session's own account, CURRENT_USER or PUBLIC. */
  readonly current: boolean;
}

/** The listed accounts: users by "user@host" (host lowercased), roles by name. */
export interface AccountList {
  readonly users: ReadonlySet<string>;
  readonly roles: ReadonlySet<string>;
}

const userKey = (user: string, host: string) => `${user}@${host.toLowerCase()}`;

/** `source.accounts` entries: "user@host" (the last @ splits) or a role's bare name. */
export function parseAccountList(entries: readonly string[]): AccountList {
  const users = new Set<string>();
  const roles = new Set<string>();
  for (const e of entries) {
    const at = e.lastIndexOf('@');
    if (at < 0) roles.add(e);
    else users.add(userKey(e.slice(0, at), e.slice(at + 1)));
  }
  return { users, roles };
}

/** The entry of the config list as SQL: `'user'@'host'` or `'role'`. */
export function accountSql(entry: string): string {
  const at = entry.lastIndexOf('@');
  return at < 0 ? quoteString(entry) : `${quoteString(entry.slice(0, at))}@${quoteString(entry.slice(at + 1))}`;
}

export function isListed(a: AccountName, list: AccountList): boolean {
  if (a.host === undefined) return list.roles.has(a.user) || list.users.has(userKey(a.user, '%'));
  return list.users.has(userKey(a.user, a.host));
}

/** The value of the string literal starting at `at` ('…' or "…", doubled quotes and backslash escapes). */
function literalAt(sql: string, at: number): string {
  const q = sql[at];
  let v = '';
  for (let i = at + 1; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === '\\') {
      v += sql[i + 1] ?? '';
      i++;
    } else if (c === q && sql[i + 1] === q) {
      v += q;
      i++;
    } else if (c === q) break;
    else v += c;
  }
  return v;
}

class AccountCursor extends Cursor {
  readonly sql: string;
  current = false;
  constructor(sql: string, toks: readonly Token[]) {
    super(toks);
    this.sql = sql;
  }
  private part(): string | undefined {
    const t = this.toks[this.pos];
    if (t?.t === 'string') {
      this.pos++;
      return literalAt(this.sql, t.at);
    }
    return this.ident();
  }
  /** One account name, or undefined (CURRENT_USER / PUBLIC set `current`). */
  account(): AccountName | undefined {
    if (this.accept('CURRENT_USER') || this.accept('CURRENT_ROLE') || this.accept('PUBLIC')) {
      if (this.acceptPunct('(')) this.acceptPunct(')');
      this.current = true;
      return undefined;
    }
    const user = this.part();
    if (user === undefined) return undefined;
    if (!this.acceptPunct('@')) return { user };
    const host = this.part();
    return host === undefined ? { user } : { user, host };
  }
  /** Skips to the next comma at parenthesis depth 0 (past auth clauses); false at the end. */
  nextItem(): boolean {
    let depth = 0;
    while (!this.done()) {
      if (this.acceptPunct('(')) depth++;
      else if (this.acceptPunct(')')) depth--;
      else if (depth === 0 && this.acceptPunct(',')) return true;
      else this.pos++;
    }
    return false;
  }
  /** A comma-separated list of accounts, each maybe followed by clauses (IDENTIFIED …, TO …). */
  list(): AccountName[] {
    const out: AccountName[] = [];
    for (;;) {
      const a = this.account();
      if (a) out.push(a);
      if (!this.nextItem()) return out;
    }
  }
  /** Moves past the first `word` at parenthesis depth 0; false when there is none. */
  skipPast(word: string): boolean {
    let depth = 0;
    while (!this.done()) {
      if (this.acceptPunct('(')) depth++;
      else if (this.acceptPunct(')')) depth--;
      else if (depth === 0 && this.accept(word)) return true;
      else this.pos++;
    }
    return false;
  }
}

/** RENAME USER a TO b, c TO d: every name on both sides. */
function renameList(c: AccountCursor): AccountName[] {
  const out: AccountName[] = [];
  for (;;) {
    const from = c.account();
    if (from) out.push(from);
    if (c.accept('TO')) {
      const to = c.account();
      if (to) out.push(to);
    }
    if (!c.acceptPunct(',')) return out;
  }
}

/** The account statement `sql` is, or null when it is none. */
export function parseAccountDdl(sql: string): AccountDdl | null {
  const c = new AccountCursor(sql, tokenize(sql));
  const verb = c.peekWord();
  c.pos++;
  let statement: string;
  let accounts: AccountName[];
  if (verb === 'CREATE' || verb === 'ALTER' || verb === 'DROP') {
    if (verb === 'CREATE') c.accept('OR', 'REPLACE');
    const what = c.peekWord();
    if (what !== 'USER' && what !== 'ROLE') return null;
    if (verb === 'ALTER' && what === 'ROLE') return null;
    c.pos++;
    c.accept('IF', 'NOT', 'EXISTS') || c.accept('IF', 'EXISTS');
    statement = `${verb} ${what}`;
    accounts = what === 'ROLE' && verb === 'CREATE' ? [c.account()].filter((a) => a !== undefined) : c.list();
  } else if (verb === 'RENAME') {
    if (!c.accept('USER')) return null;
    statement = 'RENAME USER';
    accounts = renameList(c);
  } else if (verb === 'GRANT' || verb === 'REVOKE') {
    statement = verb;
    accounts = c.skipPast(verb === 'GRANT' ? 'TO' : 'FROM') ? c.list() : [];
  } else if (verb === 'SET') {
    const what = c.accept('PASSWORD') ? 'SET PASSWORD' : c.accept('DEFAULT', 'ROLE') ? 'SET DEFAULT ROLE' : null;
    if (!what) return null;
    statement = what;
    const a = c.skipPast('FOR') ? c.account() : undefined;
    accounts = a ? [a] : [];
    if (!a) c.current = true;
  } else return null;
  return { statement, accounts, current: c.current };
}

const SECRET_WORDS = new Set(['IDENTIFIED', 'PASSWORD', 'USING']);

/**
 * `sql` with every string literal not next to an @ (an account name) replaced by '<redacted>' when the statement
 * may carry a password or a hash (it has the word IDENTIFIED, PASSWORD or USING); other statements unchanged.
 */
export function redactSecrets(sql: string): string {
  const toks = tokenize(sql);
  if (!toks.some((t) => t.t === 'word' && SECRET_WORDS.has(t.up))) return sql;
  const isAt = (t: Token | undefined) => t?.t === 'punct' && t.v === '@';
  let out = '';
  let from = 0;
  toks.forEach((t, i) => {
    if (t.t !== 'string' || isAt(toks[i - 1]) || isAt(toks[i + 1])) return;
    const end = toks[i + 1]?.at ?? sql.length;
    const raw = sql.slice(t.at, end).trimEnd();
    out += `${sql.slice(from, t.at)}'<redacted>'`;
    from = t.at + raw.length;
  });
  return out + sql.slice(from);
}

/** A server error message about an account statement: its quote of the statement ("near '…' at line n") dropped. */
export function redactServerMessage(message: string): string {
  if (!/IDENTIFIED|PASSWORD|USING/i.test(message)) return message;
  return redactSecrets(message.replace(/near '[\s\S]*' at line/, "near '<statement redacted>' at line"));
}
