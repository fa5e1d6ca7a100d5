/**
 * Types of the two quoting functions of `pg`'s lib/utils.js, imported alone by sql.ts: the package's main entry
 * loads its whole client (pg-types, pg-pool, the protocol) where quoting needs none of it. @types/pg declares
 * them only on the main entry.
 */
declare module 'pg/lib/utils.js' {
  // A CommonJS module: Node gives ESM importers its module.exports as the default export only.
  const utils: {
    escapeIdentifier(str: string): string;
    escapeLiteral(str: string): string;
  };
  export default utils;
}
