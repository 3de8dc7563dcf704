// Counter sets: names in order, indexes from an offset, help per name, and every module's set
// well-formed (no name twice, help for each).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterSet } from '../../src/util/counters.js';
import { ENGINE_COUNTERS } from '../../src/lb/engine.js';
import { CT_COUNTERS } from '../../src/lb/conntrack.js';
import { SNAT_COUNTERS } from '../../src/lb/snat.js';
import { DECAP_COUNTERS } from '../../src/decap/decapsulator.js';
import { WORKER_COUNTERS, WORKER_COUNTER_NAMES } from '../../src/dataplane/shared.js';

test('a counter set numbers its names in order from its offset and reads them back by name', () => {
  const c = counterSet({ a: 'first', b: 'second', c: 'third' }, 5);
  assert.deepEqual(c.names, ['a', 'b', 'c']);
  assert.deepEqual(c.index, { a: 5, b: 6, c: 7 });
  assert.equal(c.end, 8);
  assert.equal(c.help.b, 'second');
  const values = new Float64Array(8);
  values[6] = 42;
  assert.deepEqual(c.read(values), { a: 0, b: 42, c: 0 });
  assert.throws(() => counterSet({}), /no counters/);
  assert.throws(() => counterSet({ a: '' }), /counter a has no help/);
});

test("every module's counters have distinct names and a help sentence, and the worker set follows the engine's", () => {
  const sets = [ENGINE_COUNTERS, CT_COUNTERS, SNAT_COUNTERS, DECAP_COUNTERS, WORKER_COUNTERS];
  assert.equal(sets.length, 5);
  for (const s of sets) {
    assert.ok(s.names.length > 0);
    assert.equal(new Set(s.names).size, s.names.length, 'no name twice');
    for (const n of s.names) assert.match((s.help as Record<string, string>)[n], /\.$/, `${n} has a sentence`);
  }
  assert.equal(WORKER_COUNTERS.offset, ENGINE_COUNTERS.end);
  assert.equal(new Set(WORKER_COUNTER_NAMES).size, WORKER_COUNTER_NAMES.length, 'engine and worker names do not clash');
});
