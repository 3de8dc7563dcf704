// Balance and disruption of Maglev tables at the default size (M = 65537).
// Balance bound (derived in docs/maglev.md): after I complete fill iterations every backend b
// holds c_b slots with λ·w_b ≤ c_b ≤ λ·w_b + 2, λ = I / max weight (+1 instead of +2 for the
// backends of largest weight). So per unit of weight any two backends differ by at most
// 2 / min(w) slots, and with equal weights slot counts differ by at most 1.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { buildMaglev, type MaglevBackendSpec, type MaglevTable } from '../../src/lb/maglev.js';
import { hashSeed } from '../../src/lb/flow-hash.js';

const M = 65537;
const seed = hashSeed('balance');

function backendsOf(n: number, weight: (i: number) => number = () => 1): MaglevBackendSpec[] {
  return Array.from({ length: n }, (_, i) => ({ id: `198.18.${i >> 8}.${i & 255}:443`, weight: weight(i) }));
}

/** Asserts the bound: there is a λ with λ·w ≤ c ≤ λ·w + 2 for every active backend. */
function assertBalanceBound(t: MaglevTable): void {
  const c = t.slotCounts();
  const w = t.weights;
  const active = w.map((_, i) => i).filter((i) => w[i] > 0);
  assert.ok(active.length > 0);
  // max over a of (c_a − 2)/w_a ≤ min over b of c_b/w_b, cross-multiplied to stay in integers.
  for (const a of active) {
    for (const b of active) {
      assert.ok(
        (c[a] - 2) * w[b] <= c[b] * w[a],
        `backends ${a} (c=${c[a]}, w=${w[a]}) and ${b} (c=${c[b]}, w=${w[b]})`,
      );
    }
  }
  for (let i = 0; i < w.length; i++) if (w[i] === 0) assert.equal(c[i], 0);
}

describe('balance', () => {
  for (const n of [3, 100, 1000]) {
    test(`with ${n} equal backends slot counts differ by at most one`, () => {
      const t = buildMaglev(backendsOf(n), { size: M, seed });
      const c = t.slotCounts();
      assert.equal(c.length, n);
      assert.ok(Math.max(...c) - Math.min(...c) <= 1, `min ${Math.min(...c)} max ${Math.max(...c)}`);
      assertBalanceBound(t);
    });
  }

  test('with M ≥ 100·N equal backends every backend is within 1% of its fair share', () => {
    for (const n of [3, 100, 655]) {
      const c = buildMaglev(backendsOf(n), { size: M, seed }).slotCounts();
      for (const x of c) assert.ok(Math.abs(x - M / n) / (M / n) <= 0.01, `n=${n}: ${x} vs ${M / n}`);
    }
  });

  const weightings: Array<[string, number, (i: number) => number]> = [
    ['weights 1..10', 100, (i) => 1 + (i % 10)],
    ['weights 1..65535 (skewed)', 300, (i) => (i % 7 === 0 ? 65535 : 1 + ((i * 7919) % 5000))],
    ['weights with draining backends', 500, (i) => (i % 9 === 0 ? 0 : 100 + (i % 3) * 100)],
    ['one heavy backend among light ones', 50, (i) => (i === 0 ? 60000 : 1000)],
  ];
  for (const [what, n, weight] of weightings) {
    test(`the per-weight bound holds for ${n} backends with ${what}`, () => {
      assertBalanceBound(buildMaglev(backendsOf(n, weight), { size: M, seed }));
    });
  }

  test('the bound also holds at M = 655373 with 1000 backends of mixed weights', () => {
    assertBalanceBound(
      buildMaglev(
        backendsOf(1000, (i) => 1 + (i % 5)),
        { size: 655373, seed },
      ),
    );
  });
});

/** Fraction of slots that change owner between two tables, ignoring slots owned by `skipId` in `a`. */
function movedFraction(a: MaglevTable, b: MaglevTable, skipId: string): { moved: number; considered: number } {
  let moved = 0;
  let considered = 0;
  for (let s = 0; s < a.size; s++) {
    const before = a.backendIds[a.slots[s]];
    if (before === skipId) continue;
    considered++;
    if (b.backendIds[b.slots[s]] !== before) moved++;
  }
  return { moved, considered };
}

describe('disruption', () => {
  for (const n of [3, 100, 1000]) {
    test(`removing one of ${n} backends moves its slots and at most 1% of the others; adding it back restores the table`, () => {
      const all = backendsOf(n);
      const full = buildMaglev(all, { size: M, seed });
      const victims = [...new Set([0, Math.floor(n / 3), Math.floor(n / 2), n - 1])];
      assert.ok(victims.length > 0);
      for (const v of victims) {
        const id = all[v].id;
        const without = buildMaglev(
          all.filter((_, i) => i !== v),
          { size: M, seed },
        );
        assert.ok(!without.backendIds.includes(id));
        assert.equal(
          without.slotCounts().reduce((x, y) => x + y, 0),
          M,
        );
        const { moved, considered } = movedFraction(full, without, id);
        assert.ok(considered > 0);
        assert.ok(moved / considered <= 0.01, `removing ${id}: ${moved} of ${considered} other slots moved`);
        const back = buildMaglev([...all.filter((_, i) => i !== v), all[v]], { size: M, seed });
        assert.deepEqual(back.slots, full.slots);
        assert.equal(back.fingerprint, full.fingerprint);
      }
    });
  }

  test('draining one of 100 weighted backends moves at most 1% of the other slots', () => {
    const all = backendsOf(100, (i) => 1 + (i % 4));
    const full = buildMaglev(all, { size: M, seed });
    // Drain a backend that does not have the largest weight (that would rescale every turn).
    const drained = buildMaglev(
      all.map((b, i) => (i === 10 ? { ...b, weight: 0 } : b)),
      { size: M, seed },
    );
    assert.equal(all[10].weight, 3);
    const { moved, considered } = movedFraction(full, drained, all[10].id);
    assert.ok(moved / considered <= 0.01, `${moved} of ${considered}`);
  });
});
