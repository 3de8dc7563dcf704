// HealthMonitor on a manual clock with scripted probes: scheduling, rise/fall timing, VIP health
// by min_healthy, drain, passive signals, flap damping, counters, logs and hot reload.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HealthMonitor, type BackendTransitionEvent, type VipTransitionEvent } from '../../src/health/monitor.js';
import {
  DEFAULT_CHECK,
  mergeCheck,
  type BackendCheckOverrides,
  type BackendHealthSpec,
  type VipHealthSpec,
} from '../../src/health/options.js';
import { kernelTransport, type ProbeTransport } from '../../src/health/probes.js';
import { ManualClock } from '../helpers/clock.js';
import { captureLogger } from '../helpers/log.js';
import { ScriptedProbes } from './health-helpers.js';

const INTERVAL = 1000;
const JITTER = 100;

function backends(n: number, weight = 100): BackendHealthSpec[] {
  return Array.from({ length: n }, (_, i) => ({ name: `b${i + 1}`, address: `198.18.1.${i + 1}`, port: 80, weight }));
}

function vipSpec(over: Partial<VipHealthSpec> = {}, check: BackendCheckOverrides = {}): VipHealthSpec {
  return {
    name: 'web',
    minHealthy: 1,
    downFlows: 'keep',
    backends: backends(1),
    ...over,
    check: mergeCheck(DEFAULT_CHECK, {
      intervalMs: INTERVAL,
      timeoutMs: 500,
      jitterMs: JITTER,
      rise: 2,
      fall: 3,
      damping: { enabled: false },
      ...check,
    }),
  };
}

/** A started monitor on a manual clock; random() is 0.5 so every jitter is JITTER / 2. */
function harness(spec: VipHealthSpec, extra: { transports?: Record<string, ProbeTransport> } = {}) {
  const clock = new ManualClock();
  const probes = new ScriptedProbes(clock);
  const { logger, lines } = captureLogger();
  const seenTransports: string[] = [];
  const monitor = new HealthMonitor({
    clock,
    random: () => 0.5,
    logger,
    transports: extra.transports,
    runProbe: (t, c, transport, s) => {
      seenTransports.push(transport.name);
      return probes.run(t, c, transport, s);
    },
  });
  const backendEvents: BackendTransitionEvent[] = [];
  const vipEvents: VipTransitionEvent[] = [];
  monitor.on('backend', (e) => backendEvents.push(e));
  monitor.on('vip', (e) => vipEvents.push(e));
  monitor.setVip(spec);
  monitor.start();
  return { clock, probes, monitor, backendEvents, vipEvents, lines, seenTransports };
}

describe('scheduling and rise/fall', () => {
  test('probes start within the jitter and repeat every interval plus jitter', async () => {
    const h = harness(vipSpec());
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(3 * INTERVAL + 500);
    assert.deepEqual(
      h.probes.calls.map((c) => c.at),
      [50, 1100, 2150, 3200],
    );
    h.monitor.stop();
    assert.equal(h.clock.pending, 0);
  });

  test('a backend starting down comes up at the rise-th good probe', async () => {
    const h = harness(vipSpec({}, { initialState: 'down', rise: 3 }));
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(5 * INTERVAL);
    assert.equal(h.backendEvents.length, 1);
    const e = h.backendEvents[0];
    assert.equal(e.to, 'up');
    assert.equal(e.since, 50 + 2 * (INTERVAL + JITTER / 2));
    assert.equal(e.servingChanged, true);
    h.monitor.stop();
  });

  test('a backend whose probes start failing goes down within fall × interval + one interval', async () => {
    const fall = 3;
    const h = harness(vipSpec({}, { fall }));
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(2 * INTERVAL);
    assert.equal(h.monitor.backend('web', 'b1').state, 'up');
    const broke = h.clock.now();
    h.probes.set('198.18.1.1', 80, 'fail');
    await h.clock.advance((fall + 1) * (INTERVAL + JITTER));
    const down = h.backendEvents.filter((e) => e.to === 'down');
    assert.equal(down.length, 1);
    assert.ok(down[0].since - broke <= (fall + 1) * (INTERVAL + JITTER), `down after ${down[0].since - broke} ms`);
    assert.equal(down[0].cause, 'active');
    assert.match(down[0].reason, /^3 failed probes: fail/);
    assert.equal(down[0].downFlows, 'keep');
    h.monitor.stop();
  });

  test('the down event carries the VIP policy for existing flows', async () => {
    const h = harness(vipSpec({ downFlows: 'reschedule' }, { fall: 1 }));
    h.probes.set('198.18.1.1', 80, 'timeout');
    await h.clock.advance(INTERVAL);
    assert.deepEqual(
      h.backendEvents.map((e) => [e.to, e.downFlows]),
      [['down', 'reschedule']],
    );
    h.monitor.stop();
  });

  test('status shows state, since, last probe and run lengths', async () => {
    const h = harness(vipSpec());
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(100);
    h.probes.set('198.18.1.1', 80, 'fail');
    await h.clock.advance(INTERVAL + 100);
    const s = h.monitor.backend('web', 'b1');
    assert.equal(s.state, 'up');
    assert.equal(s.since, 50);
    assert.deepEqual(s.lastProbe, { outcome: 'fail', detail: 'scripted fail', latencyMs: 0, at: 1100 });
    assert.equal(s.consecutiveFail, 1);
    assert.equal(s.consecutiveOk, 0);
    assert.equal(s.serving, true);
    h.monitor.stop();
  });
});

describe('VIP health', () => {
  test('a VIP is healthy while its serving backends reach min_healthy', async () => {
    const h = harness(vipSpec({ backends: backends(3), minHealthy: 2 }, { fall: 1 }));
    for (let i = 1; i <= 3; i++) h.probes.set(`198.18.1.${i}`, 80, 'ok');
    await h.clock.advance(INTERVAL / 2);
    assert.deepEqual(
      h.vipEvents.map((e) => [e.healthy, e.servingBackends, e.minHealthy]),
      [[true, 2, 2]],
    );
    h.probes.set('198.18.1.1', 80, 'fail');
    await h.clock.advance(INTERVAL);
    assert.equal(h.vipEvents.length, 1);
    assert.equal(h.monitor.vip('web').healthy, true);
    h.probes.set('198.18.1.2', 80, 'fail');
    await h.clock.advance(INTERVAL);
    assert.deepEqual(
      h.vipEvents.map((e) => [e.healthy, e.servingBackends]),
      [
        [true, 2],
        [false, 1],
      ],
    );
    assert.deepEqual(h.monitor.servingBackends('web'), ['b3']);
    h.monitor.stop();
  });

  test('a VIP with min_healthy 0 is healthy before any probe', () => {
    const h = harness(vipSpec({ minHealthy: 0 }));
    assert.deepEqual(
      h.vipEvents.map((e) => e.healthy),
      [true],
    );
    h.monitor.stop();
  });

  test('a new VIP is unhealthy until enough backends come up', () => {
    const h = harness(vipSpec());
    assert.equal(h.monitor.vip('web').healthy, false);
    assert.equal(h.vipEvents.length, 0);
    h.monitor.stop();
  });
});

describe('drain', () => {
  test('draining keeps the health state and probing but takes the backend out of serving and of min_healthy', async () => {
    const h = harness(vipSpec({ backends: backends(2), minHealthy: 2 }));
    h.probes.set('198.18.1.1', 80, 'ok');
    h.probes.set('198.18.1.2', 80, 'ok');
    await h.clock.advance(INTERVAL / 2);
    assert.equal(h.monitor.vip('web').healthy, true);
    const eventsBefore = h.backendEvents.length;
    h.monitor.setDrained('web', 'b1', true);
    const s = h.monitor.backend('web', 'b1');
    assert.equal(s.state, 'up');
    assert.equal(s.drained, true);
    assert.equal(s.serving, false);
    assert.equal(h.backendEvents.length, eventsBefore);
    assert.deepEqual(h.vipEvents.at(-1), {
      vip: 'web',
      healthy: false,
      servingBackends: 1,
      minHealthy: 2,
      since: h.clock.now(),
    });
    const calls = h.probes.callsTo('198.18.1.1', 80);
    await h.clock.advance(2 * INTERVAL);
    assert.ok(h.probes.callsTo('198.18.1.1', 80) > calls);
    h.monitor.setDrained('web', 'b1', false);
    assert.equal(h.monitor.vip('web').healthy, true);
    h.monitor.stop();
  });

  test('a weight-0 backend is probed and reported but never counts as serving', async () => {
    const bs = backends(2);
    bs[1].weight = 0;
    const h = harness(vipSpec({ backends: bs, minHealthy: 2 }));
    h.probes.set('198.18.1.1', 80, 'ok');
    h.probes.set('198.18.1.2', 80, 'ok');
    await h.clock.advance(INTERVAL / 2);
    const s = h.monitor.backend('web', 'b2');
    assert.equal(s.state, 'up');
    assert.equal(s.weight, 0);
    assert.equal(s.serving, false);
    assert.equal(h.backendEvents.find((e) => e.backend === 'b2')?.servingChanged, false);
    assert.equal(h.monitor.vip('web').healthy, false);
    h.monitor.stop();
  });

  test('setDrained on an unknown backend throws', () => {
    const h = harness(vipSpec());
    assert.throws(() => h.monitor.setDrained('web', 'nope', true), /no backend "nope" in VIP "web"/);
    h.monitor.stop();
  });
});

describe('passive signals', () => {
  test('passive failures make a backend suspect, then down at the threshold; only active probes bring it back', async () => {
    const h = harness(vipSpec({}, { rise: 2, fall: 3, passiveSuspectAfter: 2, passiveDownAfter: 4 }));
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(INTERVAL / 2);
    assert.equal(h.monitor.backend('web', 'b1').state, 'up');
    // The backend now answers probes with silence too, but below fall.
    h.probes.set('198.18.1.1', 80, 'timeout');
    assert.equal(h.monitor.reportPassiveFailure('web', 'b1'), true);
    assert.equal(h.monitor.backend('web', 'b1').state, 'up');
    h.monitor.reportPassiveFailure('web', 'b1');
    assert.equal(h.monitor.backend('web', 'b1').state, 'suspect');
    assert.equal(h.monitor.backend('web', 'b1').serving, true);
    h.monitor.reportPassiveFailure('web', 'b1');
    h.monitor.reportPassiveFailure('web', 'b1');
    assert.equal(h.monitor.backend('web', 'b1').state, 'down');
    assert.deepEqual(
      h.backendEvents.map((e) => [e.from, e.to, e.cause, e.servingChanged]),
      [
        ['unknown', 'up', 'active', true],
        ['up', 'suspect', 'passive', false],
        ['suspect', 'down', 'passive', true],
      ],
    );
    h.monitor.reportPassiveSuccess('web', 'b1');
    assert.equal(h.monitor.backend('web', 'b1').state, 'down');
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(3 * INTERVAL);
    assert.equal(h.monitor.backend('web', 'b1').state, 'up');
    assert.equal(h.backendEvents.at(-1)?.cause, 'active');
    h.monitor.stop();
  });

  test('a backend turning suspect is probed at once, and a good probe clears the suspicion', async () => {
    const h = harness(vipSpec({}, { passiveSuspectAfter: 1, passiveDownAfter: 5 }));
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(INTERVAL / 2);
    const calls = h.probes.calls.length;
    h.monitor.reportPassiveFailure('web', 'b1');
    assert.equal(h.monitor.backend('web', 'b1').state, 'suspect');
    await h.clock.advance(0);
    assert.equal(h.probes.calls.length, calls + 1);
    assert.equal(h.monitor.backend('web', 'b1').state, 'up');
    h.monitor.stop();
  });

  test('passive reports for unknown names return false', () => {
    const h = harness(vipSpec());
    assert.equal(h.monitor.reportPassiveFailure('web', 'nope'), false);
    assert.equal(h.monitor.reportPassiveSuccess('nope', 'b1'), false);
    h.monitor.stop();
  });
});

describe('flap damping', () => {
  const damping = {
    enabled: true,
    penaltyPerFlap: 1000,
    suppressAbove: 2500,
    reuseBelow: 1000,
    halfLifeMs: 30_000,
    maxSuppressMs: 300_000,
  };

  /** Alternates ok/fail every probe for n probes (rise = fall = 1: every probe would flip the state). */
  async function flap(h: ReturnType<typeof harness>, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      h.probes.set('198.18.1.1', 80, i % 2 === 0 ? 'ok' : 'fail');
      await h.clock.advance(INTERVAL + JITTER / 2);
    }
  }

  test('without damping every flap is a table rebuild', async () => {
    const h = harness(vipSpec({}, { rise: 1, fall: 1 }));
    await flap(h, 40);
    assert.equal(h.backendEvents.filter((e) => e.servingChanged).length, 40);
    h.monitor.stop();
  });

  test('a flapping backend is held down after three flaps and released once the penalty decays', async () => {
    const h = harness(vipSpec({}, { rise: 1, fall: 1, damping }));
    await flap(h, 40);
    // up, down, up, down, up, down — then held down: six rebuilds instead of forty.
    assert.deepEqual(
      h.backendEvents.map((e) => e.to),
      ['up', 'down', 'up', 'down', 'up', 'down'],
    );
    const s = h.monitor.backend('web', 'b1');
    assert.equal(s.damping.suppressed, true);
    assert.equal(h.lines.filter((l) => String(l.msg).includes('held down by flap damping')).length, 1);

    // Now it stays healthy: it comes back exactly when the penalty falls below reuse, not before.
    h.probes.set('198.18.1.1', 80, 'ok');
    await h.clock.advance(INTERVAL + JITTER);
    const held = h.monitor.backend('web', 'b1');
    assert.equal(held.state, 'down');
    assert.equal(held.damping.heldDown, true);
    assert.equal(held.cause, 'damping');
    const releaseAt = h.clock.now() + held.damping.releaseInMs;
    await h.clock.advance(held.damping.releaseInMs - 1);
    assert.equal(h.monitor.backend('web', 'b1').state, 'down');
    await h.clock.advance(1);
    const last = h.backendEvents.at(-1);
    assert.deepEqual([last?.to, last?.cause, last?.since], ['up', 'damping', releaseAt]);
    assert.equal(h.monitor.backend('web', 'b1').damping.suppressed, false);
    h.monitor.stop();
    assert.equal(h.clock.pending, 0);
  });

  test('a suppressed backend that goes down is still taken out at once', async () => {
    const h = harness(vipSpec({}, { rise: 1, fall: 1, damping }));
    await flap(h, 6);
    assert.equal(h.backendEvents.at(-1)?.to, 'down');
    assert.equal(h.monitor.backend('web', 'b1').damping.suppressed, true);
    h.monitor.stop();
  });
});

describe('counters and logs', () => {
  test('counters count each probe outcome and passive report per backend', async () => {
    const h = harness(vipSpec({ backends: backends(2) }, { rise: 1, fall: 1 }));
    const script = ['ok', 'fail', 'timeout', 'error', 'ok', 'ok'] as const;
    for (const o of script) {
      h.probes.set('198.18.1.1', 80, o);
      h.probes.set('198.18.1.2', 80, 'ok');
      await h.clock.advance(INTERVAL + JITTER / 2);
    }
    h.monitor.reportPassiveFailure('web', 'b2');
    h.monitor.reportPassiveSuccess('web', 'b2');
    assert.deepEqual(h.monitor.counters(), [
      {
        vip: 'web',
        backend: 'b1',
        ok: 3,
        fail: 1,
        timeout: 1,
        error: 1,
        passiveFailures: 0,
        passiveSuccesses: 0,
        transitions: 3,
      },
      {
        vip: 'web',
        backend: 'b2',
        ok: 6,
        fail: 0,
        timeout: 0,
        error: 0,
        passiveFailures: 1,
        passiveSuccesses: 1,
        transitions: 3,
      },
    ]);
    h.monitor.stop();
  });

  test('every transition is exactly one log line naming VIP, backend, from, to and reason', async () => {
    const h = harness(vipSpec({}, { rise: 1, fall: 1 }));
    for (const o of ['ok', 'fail', 'ok'] as const) {
      h.probes.set('198.18.1.1', 80, o);
      await h.clock.advance(INTERVAL + JITTER / 2);
    }
    const backendLines = h.lines.filter((l) => l.backend === 'b1' && 'to' in l);
    assert.equal(backendLines.length, h.backendEvents.length);
    assert.equal(backendLines.length, 3);
    assert.deepEqual(
      backendLines.map((l) => [l.vip, l.from, l.to, l.component, typeof l.reason]),
      [
        ['web', 'unknown', 'up', 'health', 'string'],
        ['web', 'up', 'down', 'health', 'string'],
        ['web', 'down', 'up', 'health', 'string'],
      ],
    );
    assert.equal(h.lines.filter((l) => 'healthy' in l).length, h.vipEvents.length);
    h.monitor.stop();
  });
});

describe('configuration changes', () => {
  test('re-setting a VIP keeps the state of unchanged backends, resets moved ones and stops removed ones', async () => {
    const h = harness(vipSpec({ backends: backends(3) }));
    for (let i = 1; i <= 4; i++) h.probes.set(`198.18.1.${i}`, 80, 'ok');
    await h.clock.advance(INTERVAL / 2);
    const next = backends(2);
    next[1].address = '198.18.1.4';
    h.monitor.setVip(vipSpec({ backends: next }, { intervalMs: 2 * INTERVAL, timeoutMs: 500 }));
    assert.equal(h.monitor.backend('web', 'b1').state, 'up');
    assert.equal(h.monitor.backend('web', 'b1').since, 50);
    assert.equal(h.monitor.backend('web', 'b2').state, 'unknown');
    assert.throws(() => h.monitor.backend('web', 'b3'), /no backend "b3"/);
    const b3Calls = h.probes.callsTo('198.18.1.3', 80);
    await h.clock.advance(5 * INTERVAL);
    assert.equal(h.probes.callsTo('198.18.1.3', 80), b3Calls);
    assert.equal(h.monitor.backend('web', 'b2').state, 'up');
    assert.equal(h.monitor.counters().length, 2);
    h.monitor.stop();
  });

  test('per-backend overrides change that backend only', async () => {
    const bs = backends(2);
    bs[1].check = { port: 8080, intervalMs: 3 * INTERVAL, timeoutMs: 500 };
    const h = harness(vipSpec({ backends: bs }));
    h.probes.set('198.18.1.1', 80, 'ok');
    h.probes.set('198.18.1.2', 8080, 'ok');
    await h.clock.advance(6 * INTERVAL);
    assert.equal(h.probes.callsTo('198.18.1.2', 80), 0);
    assert.ok(h.probes.callsTo('198.18.1.2', 8080) < h.probes.callsTo('198.18.1.1', 80));
    assert.equal(h.monitor.backend('web', 'b2').port, 8080);
    h.monitor.stop();
  });

  test('probing through the tunnel needs a tunnel transport; given one, the probes use it', async () => {
    const monitor = new HealthMonitor({ clock: new ManualClock() });
    assert.throws(() => monitor.setVip(vipSpec({}, { via: 'tunnel' })), /probes via "tunnel" need a transport/);
    const tunnel: ProbeTransport = { ...kernelTransport, name: 'gre-tunnel' };
    const h = harness(vipSpec({}, { via: 'tunnel' }), { transports: { tunnel } });
    await h.clock.advance(INTERVAL / 2);
    assert.deepEqual(h.seenTransports, ['gre-tunnel']);
    h.monitor.stop();
  });

  test('invalid checks are refused with the backend named and nothing changes', () => {
    const h = harness(vipSpec());
    assert.throws(
      () => h.monitor.setVip(vipSpec({}, { timeoutMs: 5000 })),
      /VIP "web" backend "b1": timeoutMs must be 1..intervalMs/,
    );
    assert.throws(() => h.monitor.setVip(vipSpec({}, { rise: 0 })), /rise must be an integer/);
    const dup = backends(2);
    dup[1].name = 'b1';
    assert.throws(() => h.monitor.setVip(vipSpec({ backends: dup })), /duplicate backend name "b1"/);
    assert.equal(h.monitor.backends().length, 1);
    h.monitor.stop();
  });

  test('stop clears every timer and removeVip forgets the VIP', async () => {
    const h = harness(
      vipSpec({ backends: backends(3) }, { rise: 1, fall: 1, damping: { enabled: true, suppressAbove: 1500 } }),
    );
    await h.clock.advance(3 * INTERVAL);
    assert.ok(h.clock.pending > 0);
    h.monitor.stop();
    assert.equal(h.clock.pending, 0);
    assert.equal(h.monitor.removeVip('web'), true);
    assert.equal(h.monitor.removeVip('web'), false);
    assert.deepEqual(h.monitor.vips(), []);
  });
});
