// The announcer: a VIP is announced exactly while it and weir are healthy, on every session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BgpAnnouncer, type RouteSink } from '../../src/bgp/announcer.js';
import type { RouteAttrs, ShutdownOptions } from '../../src/bgp/session.js';

class FakeSink implements RouteSink {
  log: string[] = [];
  routes = new Map<string, RouteAttrs>();
  shutdowns: ShutdownOptions[] = [];
  announce(prefix: string, attrs: RouteAttrs): void {
    this.log.push(`+${prefix}`);
    this.routes.set(prefix, attrs);
  }
  withdraw(prefix: string): boolean {
    this.log.push(`-${prefix}`);
    return this.routes.delete(prefix);
  }
  shutdown(opts: ShutdownOptions): Promise<void> {
    this.shutdowns.push(opts);
    this.routes.clear();
    return Promise.resolve();
  }
}

const cases: { vip: boolean; self: boolean; announced: boolean }[] = [
  { vip: false, self: false, announced: false },
  { vip: true, self: false, announced: false },
  { vip: false, self: true, announced: false },
  { vip: true, self: true, announced: true },
];
for (const c of cases) {
  test(`a VIP that is ${c.vip ? 'healthy' : 'unhealthy'} on a weir that is ${c.self ? 'healthy' : 'unhealthy'} is ${c.announced ? 'announced' : 'not announced'}`, () => {
    const a = new FakeSink();
    const b = new FakeSink();
    const ann = new BgpAnnouncer([a, b]);
    ann.setVip('198.18.250.1/32', { med: 10 });
    ann.setVipHealthy('198.18.250.1/32', c.vip);
    ann.setSelfHealthy(c.self);
    for (const s of [a, b]) assert.deepEqual([...s.routes.keys()], c.announced ? ['198.18.250.1/32'] : []);
    assert.deepEqual(ann.announced(), c.announced ? ['198.18.250.1/32'] : []);
  });
}

test('health flapping announces and withdraws once per change, never twice in a row', () => {
  const s = new FakeSink();
  const ann = new BgpAnnouncer([s]);
  ann.setSelfHealthy(true);
  ann.setVip('fd00:250::1', {});
  for (const h of [true, true, false, false, true, false]) ann.setVipHealthy('fd00:250::1/128', h);
  assert.deepEqual(s.log, ['+fd00:250::1/128', '-fd00:250::1/128', '+fd00:250::1/128', '-fd00:250::1/128']);
});

test('weir becoming unhealthy withdraws every VIP; changed attributes are re-announced; removal withdraws', () => {
  const s = new FakeSink();
  const ann = new BgpAnnouncer([s]);
  ann.setSelfHealthy(true);
  for (const v of ['198.18.250.1/32', '198.18.250.2/32']) {
    ann.setVip(v);
    ann.setVipHealthy(v, true);
  }
  ann.setVip('198.18.250.1/32', { med: 99 });
  assert.equal(s.routes.get('198.18.250.1/32')?.med, 99);
  ann.removeVip('198.18.250.2/32');
  assert.deepEqual([...s.routes.keys()], ['198.18.250.1/32']);
  ann.setSelfHealthy(false);
  assert.equal(s.routes.size, 0);
  assert.throws(() => ann.setVipHealthy('198.18.250.2/32', true), /unknown VIP/);
});

test('shutdown drains every session with the given options and leaves nothing announced', async () => {
  const a = new FakeSink();
  const b = new FakeSink();
  const ann = new BgpAnnouncer([a, b]);
  ann.setSelfHealthy(true);
  ann.setVip('198.18.250.1/32');
  ann.setVipHealthy('198.18.250.1/32', true);
  await ann.shutdown({ gracefulShutdownCommunity: true, waitMs: 100 });
  assert.deepEqual(a.shutdowns, [{ gracefulShutdownCommunity: true, waitMs: 100 }]);
  assert.deepEqual(b.shutdowns, [{ gracefulShutdownCommunity: true, waitMs: 100 }]);
  assert.deepEqual(ann.announced(), []);
});
