/**
 * The messages pgoutput.ts decodes: one type per pgoutput v1 message kind (B C O Y R I U D T M), the cells of a
 * TupleData (PgCell, or PgValue once typed by the Relation message) and a relation's columns. Types only.
 */
/** One column value of a TupleData, as sent. */
export type PgCell =
  | { readonly kind: 'null' }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'text'; readonly text: string };

/** A cell with its column's type OID (from the Relation message). */
export type PgValue = PgCell & { readonly typeOid: number };

export interface PgColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typeMod: number;
  /** Part of the replica identity (the key an update/delete's old tuple carries). */
  readonly isKey: boolean;
}

/** relreplident: d default (primary key), n nothing, f full, i index. */
export type ReplicaIdentity = 'd' | 'n' | 'f' | 'i';

export interface BeginMessage {
  readonly tag: 'begin';
  readonly finalLsn: bigint;
  readonly commitTime: bigint;
  readonly xid: number;
}
export interface CommitMessage {
  readonly tag: 'commit';
  readonly flags: number;
  readonly commitLsn: bigint;
  /** The end of the commit record: the position to confirm once the transaction is durable. */
  readonly endLsn: bigint;
  readonly commitTime: bigint;
}
export interface OriginMessage {
  readonly tag: 'origin';
  readonly commitLsn: bigint;
  readonly name: string;
}
export interface TypeMessage {
  readonly tag: 'type';
  readonly typeOid: number;
  readonly namespace: string;
  readonly name: string;
}
export interface RelationMessage {
  readonly tag: 'relation';
  readonly relationOid: number;
  /** '' for pg_catalog. */
  readonly namespace: string;
  readonly name: string;
  readonly replicaIdentity: ReplicaIdentity;
  readonly columns: readonly PgColumn[];
}
/** Which old tuple an update or delete carries: the replica identity key only, or the whole old row (FULL). */
export type OldTupleKind = 'key' | 'old';
export interface InsertMessage<V = PgCell> {
  readonly tag: 'insert';
  readonly relationOid: number;
  readonly newTuple: readonly V[];
}
export interface UpdateMessage<V = PgCell> {
  readonly tag: 'update';
  readonly relationOid: number;
  /** Absent when the replica identity columns did not change (and identity is not FULL). */
  readonly old?: { readonly kind: OldTupleKind; readonly tuple: readonly V[] };
  readonly newTuple: readonly V[];
}
export interface DeleteMessage<V = PgCell> {
  readonly tag: 'delete';
  readonly relationOid: number;
  readonly old: { readonly kind: OldTupleKind; readonly tuple: readonly V[] };
}
export interface TruncateMessage {
  readonly tag: 'truncate';
  readonly cascade: boolean;
  readonly restartIdentity: boolean;
  readonly relationOids: readonly number[];
}
export interface LogicalMessage {
  readonly tag: 'message';
  readonly transactional: boolean;
  readonly lsn: bigint;
  readonly prefix: string;
  readonly content: Uint8Array;
}

export type PgoutputMessage<V = PgCell> =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | TypeMessage
  | RelationMessage
  | InsertMessage<V>
  | UpdateMessage<V>
  | DeleteMessage<V>
  | TruncateMessage
  | LogicalMessage;
