// rate_limits: token-bucket arithmetic, client prefixes, the shared table's evictions, and the
// engine dropping new flows (never established ones) by reason. Time comes from a ManualClock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../helpers/clock.js';
import {
  RATE_LIMIT_SLOTS,
  RL_ALLOW,
  RL_DENY_CLIENT,
  RL_DENY_INSTANCE,
  RateLimiter,
  refill,
  type RateLimitSettings,
} from '../../src/lb/rate-limit.js';
import { parseIp, TCP_ACK, TCP_SYN } from '../../src/packet/index.js';
import { ConnTable } from '../../src/lb/conntrack.js';
import { VipTable } from '../../src/lb/vip-table.js';
import { SnatAllocator } from '../../src/lb/snat.js';
import { ENGINE_COUNTER_NAMES, Engine, EngineOutput, VERDICT_DROP, VERDICT_TX_IP } from '../../src/lb/engine.js';
import { rateLimitSettings } from '../../src/daemon/dataplane-settings.js';
import { parseConfigText } from '../../src/config/load.js';
import { TABLE_OPTS, frame, vipSpecs } from './engine-helpers.js';

const OFF: RateLimitSettings = {
  instanceRate: 0,
  instanceBurst: 0,
  clientRate: 0,
  clientBurst: 0,
  prefix4: 24,
  prefix6: 64,
};

function admit(l: RateLimiter, addr: string, now: number): number {
  const b = parseIp(addr)!;
  return l.admit(b.length === 4 ? 4 : 6, b, 0, now);
}

function count(l: RateLimiter, addr: string, n: number, now: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (admit(l, addr, now) === RL_ALLOW) ok++;
  return ok;
}

test('refill adds rate × elapsed time up to the burst; a clock that went back adds nothing', () => {
  assert.equal(refill(0, 0, 500, 50, 50), 25);
  assert.equal(refill(10, 0, 10_000, 50, 50), 50, 'capped at the burst');
  assert.equal(refill(3, 1000, 900, 50, 50), 3, 'clock back');
  assert.equal(refill(0, 0xfffffff0 | 0, 0x10, 1000, 1000), 32, 'across the 2^32 ms wrap');
  assert.equal(refill(0.5, 0, 10, 100, 5), 1.5, 'fractions carry over');
});

test('a client prefix gets burst flows at once, then rate per second; other prefixes are apart', () => {
  const clock = new ManualClock();
  const l = RateLimiter.create({ ...OFF, clientRate: 50, clientBurst: 50 });
  assert.equal(count(l, '198.18.5.1', 60, clock.now()), 50, 'the burst');
  assert.equal(admit(l, '198.18.5.200', clock.now()), RL_DENY_CLIENT, 'same /24');
  assert.equal(count(l, '198.18.6.1', 5, clock.now()), 5, 'another /24 has its own bucket');
  clock.t += 100; // 100 ms at 50/s = 5 tokens
  assert.equal(count(l, '198.18.5.7', 10, clock.now()), 5);
  clock.t += 10_000;
  assert.equal(count(l, '198.18.5.7', 100, clock.now()), 50, 'refilled only up to the burst');
  // Over 5 s of steady demand: burst + rate × 5.
  let ok = 0;
  for (let ms = 0; ms < 5000; ms += 10) {
    clock.t += 10;
    ok += count(l, '198.18.7.9', 10, clock.now());
  }
  assert.equal(ok, 50 + 50 * 5 - 1, 'rate × seconds + burst (the first tick refills before the bucket exists)');
});

test('IPv6 clients share a bucket per /64 (client_prefix_v6), IPv4 per client_prefix_v4', () => {
  const l = RateLimiter.create({ ...OFF, clientRate: 2, clientBurst: 2, prefix4: 32, prefix6: 64 });
  assert.equal(count(l, 'fd00::1', 1, 0) + count(l, 'fd00::ffff:1', 5, 0), 2);
  assert.equal(count(l, 'fd00:0:0:1::1', 5, 0), 2, 'the next /64');
  assert.equal(count(l, '198.18.5.1', 5, 0), 2);
  assert.equal(count(l, '198.18.5.2', 5, 0), 2, '/32: per address');
  const odd = RateLimiter.create({ ...OFF, clientRate: 1, clientBurst: 1, prefix4: 20, prefix6: 36 });
  assert.equal(count(odd, '198.18.15.1', 1, 0) + count(odd, '198.18.0.1', 3, 0), 1, '198.18.0.0/20');
  assert.equal(count(odd, '198.18.16.1', 1, 0), 1);
  assert.equal(count(odd, 'fd00:0:0fff::1', 1, 0) + count(odd, 'fd00:0:0::2', 1, 0), 1, 'fd00::/36');
  assert.equal(count(odd, 'fd00:0:1000::1', 1, 0), 1);
});

test('the instance bucket limits all clients together, after their own buckets', () => {
  const l = RateLimiter.create({ ...OFF, instanceRate: 100, instanceBurst: 10, clientRate: 5, clientBurst: 5 });
  let inst = 0,
    client = 0,
    ok = 0;
  for (let c = 0; c < 4; c++)
    for (let i = 0; i < 6; i++) {
      const r = admit(l, `198.18.${c}.1`, 0);
      if (r === RL_ALLOW) ok++;
      else if (r === RL_DENY_CLIENT) client++;
      else if (r === RL_DENY_INSTANCE) inst++;
    }
  assert.deepEqual({ ok, client, inst }, { ok: 10, client: 4, inst: 10 });
  assert.equal(admit(l, '198.18.9.1', 50), RL_ALLOW, '50 ms later: 5 more');
});

test('a full table evicts the record refilled longest ago and counts it; views share the buckets', () => {
  const l = RateLimiter.create({ ...OFF, clientRate: 1, clientBurst: 1, prefix4: 32 }, 8);
  for (let i = 0; i < 8; i++) assert.equal(admit(l, `198.18.0.${i}`, i), RL_ALLOW);
  assert.equal(l.stats().rateLimitEvictions, 0);
  assert.equal(admit(l, '198.18.0.100', 100), RL_ALLOW);
  assert.equal(l.stats().rateLimitEvictions, 1);
  const other = RateLimiter.attach(l.shared());
  assert.equal(admit(other, '198.18.0.100', 100), RL_DENY_CLIENT, 'another worker sees the spent bucket');
  // Records refilled "in the future" (another worker's clock a little ahead) are still evictable.
  for (let i = 0; i < 8; i++) admit(l, `198.18.1.${i}`, 5000);
  assert.equal(admit(l, '198.18.2.1', 4000), RL_ALLOW);
  assert.throws(() => RateLimiter.create(OFF, 100), /power of two/);
  assert.equal(RateLimiter.create(OFF).shared().slots, RATE_LIMIT_SLOTS);
});

test('configure (a reload) applies new rates and starts every bucket full', () => {
  const l = RateLimiter.create({ ...OFF, clientRate: 1, clientBurst: 1 });
  assert.equal(count(l, '198.18.0.1', 3, 0), 1);
  l.configure({ ...OFF, clientRate: 3, clientBurst: 3 }, 0);
  assert.equal(count(l, '198.18.0.1', 5, 0), 3);
  l.configure(OFF, 0);
  assert.equal(l.active, false);
  assert.equal(count(l, '198.18.0.1', 100, 0), 100, 'unlimited');
  assert.throws(() => l.configure({ ...OFF, prefix4: 33 }, 0), /prefix/);
});

test('the engine drops new flows over a limit as dropRateLimitClient; established flows pass', () => {
  const l = RateLimiter.create({ ...OFF, clientRate: 2, clientBurst: 2 });
  const ct = ConnTable.create({ capacity: 256, seed: 7 });
  const engine = new Engine(ct, new VipTable(vipSpecs(), TABLE_OPTS), new SnatAllocator(), undefined, { limiter: l });
  const out = new EngineOutput();
  const pkt = (sp: number, flags: number) =>
    frame({ src: '198.18.9.1', dst: '198.18.0.10', proto: 'tcp', srcPort: sp, dstPort: 80, tcpFlags: flags });
  const send = (sp: number, flags: number) => {
    const f = pkt(sp, flags);
    return engine.process(f, 0, f.length, 0, 1, out);
  };
  assert.equal(send(1, TCP_SYN), VERDICT_TX_IP);
  assert.equal(send(2, TCP_SYN), VERDICT_TX_IP);
  assert.equal(send(3, TCP_SYN), VERDICT_DROP);
  assert.equal(ENGINE_COUNTER_NAMES[out.reason], 'dropRateLimitClient');
  assert.equal(send(1, TCP_ACK), VERDICT_TX_IP, 'an established flow is not a new flow');
  assert.equal(engine.stats().dropRateLimitClient, 1);
  assert.equal(engine.stats().newFlows, 2);
});

test('rate_limits in the config: burst 0 is one second worth, prefixes default to /24 and /64', () => {
  const r = parseConfigText(
    'rate_limits:\n  per_client_new_flows_per_second: 50\n  new_flows_per_second: 1000\n  burst: 10\n',
  );
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(rateLimitSettings(r.config.rate_limits), {
    instanceRate: 1000,
    instanceBurst: 10,
    clientRate: 50,
    clientBurst: 50,
    prefix4: 24,
    prefix6: 64,
  });
  const bad = parseConfigText('rate_limits:\n  client_prefix_v4: 33\n');
  assert.ok(!bad.ok);
});
