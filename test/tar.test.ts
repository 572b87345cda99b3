// The archive reader and writer on their own: what push packs is what the host unpacks (long paths included),
// archives made by other tools (one top directory, pax path records) read the same, and the reader's refusals.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isHostError } from '../src/errors/index.js';
import { packTarGz, readTarGz, safeEntryPath } from '../src/uploads/index.js';
import { rawTarGz } from './support/archives.js';

const LIMITS = { maxEntries: 100, maxBytes: 1024 * 1024 };

describe('tar archives', () => {
  test('what packTarGz writes, readTarGz reads back, paths over 100 bytes included', () => {
    const long = `${'d'.repeat(90)}/${'e'.repeat(60)}/file.ts`;
    const entries = [
      { path: 'main.ts', type: 'file' as const, data: Buffer.from('export {};\n') },
      { path: 'lib', type: 'dir' as const, data: Buffer.alloc(0) },
      { path: 'lib/empty.txt', type: 'file' as const, data: Buffer.alloc(0) },
      { path: long, type: 'file' as const, data: Buffer.from('x'.repeat(1000)) },
    ];
    const back = readTarGz(packTarGz(entries), LIMITS);
    assert.deepEqual(
      back.map((e) => [e.path, e.type, e.data.toString()]),
      entries.map((e) => [e.path, e.type, e.data.toString()]),
    );
    // the same tree packs to the same bytes (no times, owners or modes from the disk)
    assert.deepEqual(packTarGz(entries), packTarGz(entries));
  });

  test('a pax path record names the entry that follows', () => {
    const name = `${'p'.repeat(120)}.ts`;
    const record = ` path=${name}\n`;
    const len = String(record.length + 3).length + record.length;
    const pax = `${len}${record}`;
    const back = readTarGz(
      rawTarGz([
        { name: 'PaxHeader', flag: 'x', data: pax },
        { name: 'short', flag: '0', data: 'y' },
      ]),
      LIMITS,
    );
    assert.deepEqual(
      back.map((e) => e.path),
      [name],
    );
  });

  test('unsafe paths are refused, harmless ones normalized', () => {
    for (const p of ['../x', 'a/../../x', '/etc/passwd', 'C:/x', 'a\\..\\x', 'a\0b']) {
      assert.throws(
        () => safeEntryPath(p),
        (e) => isHostError(e, 'PH_ERR_UPLOAD_UNSAFE_PATH'),
        p,
      );
    }
    assert.equal(safeEntryPath('./a//b/./c/'), 'a/b/c');
  });

  test('a header with a wrong checksum or a truncated entry is not an archive', () => {
    const good = rawTarGz([{ name: 'main.ts', flag: '0', data: 'z'.repeat(700) }], false);
    const corrupt = Buffer.from(good);
    corrupt[0] = 'X'.charCodeAt(0);
    assert.throws(
      () => readTarGz(gzipSync(corrupt), LIMITS),
      (e) => isHostError(e, 'PH_ERR_UPLOAD_BAD_ARCHIVE'),
    );
    assert.throws(
      () => readTarGz(gzipSync(good.subarray(0, 700)), LIMITS),
      (e) => isHostError(e, 'PH_ERR_UPLOAD_BAD_ARCHIVE'),
    );
  });
});
