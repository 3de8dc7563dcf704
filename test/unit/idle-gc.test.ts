import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdleGc } from '../../src/util/idle-gc.js';
import { sleep } from '../helpers/wait.js';

test('IdleGc collects once after a burst of pokes has been quiet for its delay, and not after stop', async () => {
  const g = new IdleGc(500);
  for (let i = 0; i < 5; i++) {
    g.poke();
    await sleep(10); // each poke restarts the wait
  }
  assert.equal(g.runs, 0, 'no collection while pokes keep coming');
  await sleep(1500);
  assert.equal(g.runs, 1, 'one collection after the burst');
  g.poke();
  g.stop();
  await sleep(1000);
  assert.equal(g.runs, 1, 'a stopped IdleGc never collects');
});
