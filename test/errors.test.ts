import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ERROR_CODES } from '../src/errors/index.js';
import { ROOT } from './support/util.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('error registry', () => {
  const doc = readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8');
  const rows = new Map<string, { status: number; title: string }>();
  for (const m of doc.matchAll(/^\|\s*`(PH_ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|/gm)) {
    rows.set(m[1] as string, { status: Number(m[2]), title: (m[3] as string).trim() });
  }

  test('every code in the registry is documented with its status and title', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      const row = rows.get(code);
      assert.ok(row, `${code} is documented in docs/errors.md`);
      assert.equal(row.status, spec.status, `${code}: documented status`);
      assert.equal(row.title, spec.title, `${code}: documented title`);
    }
  });

  test('the documentation names no code the registry lacks', () => {
    for (const code of rows.keys()) assert.ok(code in ERROR_CODES, `${code} is in src/errors/index.ts`);
  });

  test('every code used in the sources is in the registry', () => {
    for (const file of filesUnder(path.join(ROOT, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/['"`](PH_ERR_[A-Z_]+)['"`]/g)) {
        assert.ok((m[1] as string) in ERROR_CODES, `${m[1]} (used in ${path.relative(ROOT, file)}) is in the registry`);
      }
    }
  });

  test('codes are well-formed and statuses are HTTP error statuses', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^PH_ERR_[A-Z]+(_[A-Z]+)*$/);
      assert.ok(spec.status >= 400 && spec.status <= 599, `${code}: ${spec.status}`);
      assert.ok(spec.title.length > 0);
    }
  });
});
