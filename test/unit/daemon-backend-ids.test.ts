// Backend ids (daemon/registry.ts): unique within a VIP, stable per name, unique across VIPs
// while fewer than 65535 pairs exist, and no ceiling of 65535 in all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendIdRegistry, MAX_ID, backendKey } from '../../src/daemon/registry.js';

test('100,000 (VIP, backend) pairs get ids: unique within each VIP, stable, released and listed', () => {
  const r = new BackendIdRegistry();
  const perVip = new Map<string, Set<number>>();
  for (let v = 0; v < 1000; v++) {
    const ids = new Set<number>();
    for (let b = 0; b < 100; b++) {
      const id = r.idFor(backendKey(`vip${v}`, `be${b}`));
      assert.ok(id >= 1 && id <= MAX_ID);
      ids.add(id);
    }
    assert.equal(ids.size, 100, `vip${v}: ids unique within the VIP`);
    perVip.set(`vip${v}`, ids);
  }
  assert.equal(r.size, 100_000);
  assert.equal(r.idFor(backendKey('vip7', 'be3')), r.peek(backendKey('vip7', 'be3')), 'stable');
  // The first 65535 pairs have ids no other VIP uses.
  const first = [...perVip.get('vip0')!].concat([...perVip.get('vip1')!]);
  assert.equal(new Set(first).size, 200);
  r.release(backendKey('vip7', 'be3'));
  assert.equal(r.peek(backendKey('vip7', 'be3')), undefined);
  assert.equal(r.size, 99_999);
  assert.equal(r.entries().length, 99_999);
  assert.ok(r.entries().every(([k, id]) => r.peek(k) === id));
});

test('a VIP with 65535 backends is full: the next one is an error naming the VIP', () => {
  const r = new BackendIdRegistry();
  for (let b = 0; b < MAX_ID; b++) r.idFor(backendKey('big', `be${b}`));
  assert.throws(() => r.idFor(backendKey('big', 'one-more')), /VIP big: more than 65535 backend ids in use/);
  assert.equal(r.idFor(backendKey('other', 'be0')) > 0, true, 'another VIP still gets ids');
});
