// The ceilings of the shared tables (lb/limits.ts, lb/slot-store.ts) are config errors that
// name the number, and a config at the ceiling passes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crossChecks } from '../../src/config/checks.js';
import type { VipConfig } from '../../src/config/schema.js';
import { MAX_VIP_BACKEND_PAIRS, MAX_VIPS } from '../../src/lb/limits.js';
import { MAX_SLOT_BYTES } from '../../src/lb/slot-store.js';
import { parseConfig } from '../helpers/config.js';

const base = parseConfig(`
instance: { addresses: [198.18.1.11] }
vips:
  - { name: v, address: 198.19.0.1, port: 80, mode: dsr-gre, health_check: { type: none },
      backends: [{ name: a, address: 198.18.2.1 }] }
`).vips[0];

/** n VIPs with distinct names and addresses, each with `backends` backends and the given table size. */
function vips(n: number, backends: number, tableSize = base.table_size): { index: number; vip: VipConfig }[] {
  const bs = Array.from({ length: backends }, (_, b) => ({
    ...base.backends[0],
    name: `b${b}`,
    address: `198.18.${2 + (b >> 8)}.${b & 255}`,
  }));
  return Array.from({ length: n }, (_, i) => ({
    index: i,
    vip: { ...base, name: `v${i}`, address: `198.19.${i >> 8}.${i & 255}`, table_size: tableSize, backends: bs },
  }));
}

const limitIssues = (input: { index: number; vip: VipConfig }[]): string[] =>
  crossChecks({ vips: input })
    .filter((i) => i.path.length === 1 && i.path[0] === 'vips')
    .map((i) => i.message);

test('16,384 VIPs pass; one more is a config error naming both numbers', () => {
  assert.equal(MAX_VIPS, 16384);
  assert.deepEqual(limitIssues(vips(MAX_VIPS, 1, 1009)), []);
  const over = limitIssues(vips(MAX_VIPS + 1, 1, 1009));
  assert.equal(over.length, 1);
  assert.match(over[0], /lists 16385 VIPs; weir takes at most 16384/);
});

test('1,048,576 (VIP, backend) pairs pass; more is a config error naming both numbers', () => {
  assert.deepEqual(limitIssues(vips(256, 4096, 4099)), []); // exactly 1,048,576
  const over = limitIssues(vips(257, 4096, 4099));
  assert.equal(over.length, 1);
  assert.match(
    over[0],
    new RegExp(`list 1052672 \\(VIP, backend\\) pairs in all; weir takes at most ${MAX_VIP_BACKEND_PAIRS}`),
  );
});

test('16,384 VIPs at table_size 65537 fit the slot arena; very large tables are a config error naming the bytes', () => {
  assert.deepEqual(limitIssues(vips(MAX_VIPS, 1)), []);
  assert.deepEqual(limitIssues(vips(100, 1, 16777213)), [], '1-byte slots: 1.6 GB');
  const over = limitIssues(vips(200, 1, 16777213));
  assert.equal(over.length, 1);
  assert.match(over[0], new RegExp(`need 3355446400 bytes of Maglev slots .* at most ${MAX_SLOT_BYTES}`));
  assert.equal(limitIssues(vips(100, 255, 16777213)).length, 1, '2-byte slots from 255 backends: 3.4 GB');
});
