import { describe, expect, it } from 'vitest';
import { eofChunk, fileChunks, payloadChunk } from '../test/fixtures/mbstream-kit.ts';
import { MetaCapture, parseBinlogInfo, parseCheckpoints } from './backup-info.ts';
import { FLAG_REWRITE, MbstreamParser } from './mbstream.ts';

describe('parseCheckpoints', () => {
  it('reads the LSNs as bigint beyond 2^53', () => {
    const cp = parseCheckpoints(
      'backup_type = incremental\nfrom_lsn = 9007199254740993\nto_lsn = 9007199254741000\nlast_lsn = 9007199254741007\n',
    );
    expect(cp).toMatchObject({
      backupType: 'incremental',
      fromLsn: 9007199254740993n,
      toLsn: 9007199254741000n,
      lastLsn: 9007199254741007n,
    });
  });

  it('names the key that is missing or not a number', () => {
    expect(() => parseCheckpoints('backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 12\n')).toThrow(
      "'last_lsn' is missing",
    );
    expect(() => parseCheckpoints('backup_type = full-backuped\nfrom_lsn = x\nto_lsn = 1\nlast_lsn = 1')).toThrow(
      "'from_lsn' is not a number ('x')",
    );
    expect(() => parseCheckpoints('from_lsn = 0')).toThrow("'backup_type' is missing");
  });
});

describe('parseBinlogInfo', () => {
  it('reads file, position and a multi-domain GTID list', () => {
    expect(parseBinlogInfo('mysql-bin.000007\t4242\t0-1-100,1-2-7\n')).toEqual({
      file: 'mysql-bin.000007',
      position: 4242n,
      gtid: '0-1-100,1-2-7',
    });
  });

  it('accepts a missing or empty GTID and refuses a bad line', () => {
    expect(parseBinlogInfo('mysql-bin.000001\t385\n').gtid).toBeNull();
    expect(parseBinlogInfo('mysql-bin.000001\t385\t\n').gtid).toBeNull();
    expect(() => parseBinlogInfo('mysql-bin.000001 385')).toThrow('expected');
    expect(() => parseBinlogInfo('mysql-bin.000001\t385\t0-1')).toThrow("GTID list '0-1' is malformed");
  });
});

describe('MetaCapture', () => {
  it('captures both files from a stream split across chunks, ignoring data files', () => {
    const cp = Buffer.from('backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 47512\nlast_lsn = 47520\n');
    const stream = Buffer.concat([
      fileChunks('ibdata1', Buffer.alloc(3000, 1), 1000),
      fileChunks('xtrabackup_checkpoints', cp, 7),
      fileChunks('db/xtrabackup_checkpoints', Buffer.from('not top level')),
      payloadChunk('xtrabackup_binlog_info', 0, 'mysql-bin.000002\t1187\t0-3770-12\n'),
      eofChunk('xtrabackup_binlog_info'),
    ]);
    const p = new MbstreamParser();
    const cap = new MetaCapture();
    for (let off = 0; off < stream.length; off += 13)
      for (const c of p.push(stream.subarray(off, off + 13))) cap.observe(c);
    p.end();
    const r = cap.result();
    expect(r.checkpoints).toMatchObject({ backupType: 'full-backuped', fromLsn: 0n, toLsn: 47512n, lastLsn: 47520n });
    expect(r.binlog).toEqual({ file: 'mysql-bin.000002', position: 1187n, gtid: '0-3770-12' });
  });

  it('keeps the rewritten version of a file and reports absent files as null', () => {
    const p = new MbstreamParser();
    const cap = new MetaCapture();
    const stream = Buffer.concat([
      fileChunks('xtrabackup_binlog_info', Buffer.from('mysql-bin.000001\t4\t0-1-1\n')),
      payloadChunk('xtrabackup_binlog_info', 0, 'mysql-bin.000001\t900\t0-1-3\n', FLAG_REWRITE),
      eofChunk('xtrabackup_binlog_info'),
    ]);
    for (const c of p.push(stream)) cap.observe(c);
    expect(cap.result()).toEqual({
      checkpoints: null,
      binlog: { file: 'mysql-bin.000001', position: 900n, gtid: '0-1-3' },
    });
  });
});
