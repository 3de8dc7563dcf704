// BackendHealth and FlapDamper on their own: rise/fall counting, initial states, passive signals,
// RFC 2439-style penalty arithmetic. Time is a plain number here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BackendHealth, type HealthState } from '../../src/health/backend-state.js';
import { FlapDamper } from '../../src/health/damping.js';
import { DEFAULT_CHECK, DEFAULT_DAMPING, mergeCheck, type BackendCheckOverrides } from '../../src/health/options.js';
import type { ProbeOutcome } from '../../src/health/probes.js';

const NO_DAMPING = { damping: { enabled: false } };

function health(over: BackendCheckOverrides = {}): BackendHealth {
  return new BackendHealth(mergeCheck(DEFAULT_CHECK, { ...NO_DAMPING, ...over }), 0);
}

/** Feeds outcomes ('+' ok, '-' fail, 't' timeout, 'e' error) and returns the state after each. */
function run(h: BackendHealth, script: string): HealthState[] {
  const map: Record<string, ProbeOutcome> = { '+': 'ok', '-': 'fail', t: 'timeout', e: 'error' };
  return Array.from(script, (c, i) => {
    h.onProbe({ outcome: map[c], detail: c, latencyMs: 0 }, i + 1);
    return h.state;
  });
}

describe('rise and fall', () => {
  const cases: { name: string; over: BackendCheckOverrides; script: string; states: string }[] = [
    // u = unknown, U = up, D = down, one letter per probe result.
    { name: 'unknown goes up on the first success', over: { rise: 3, fall: 3 }, script: '+', states: 'U' },
    { name: 'unknown goes down on the first failure', over: { rise: 3, fall: 3 }, script: '-', states: 'D' },
    { name: 'down needs rise consecutive successes', over: { rise: 3, fall: 2 }, script: '-++-+++', states: 'DDDDDDU' },
    { name: 'up needs fall consecutive failures', over: { rise: 2, fall: 3 }, script: '+--+---', states: 'UUUUUUD' },
    { name: 'timeouts and errors count as failures', over: { rise: 1, fall: 3 }, script: '+te-', states: 'UUUD' },
    {
      name: 'initial up goes down at the first failure, then needs rise',
      over: { initialState: 'up', rise: 2, fall: 3 },
      script: '-++',
      states: 'DDU',
    },
    {
      name: 'initial up stays up on success and then needs fall failures',
      over: { initialState: 'up', rise: 2, fall: 2 },
      script: '+--',
      states: 'UUD',
    },
    {
      name: 'initial down needs the full rise',
      over: { initialState: 'down', rise: 2, fall: 2 },
      script: '++',
      states: 'DU',
    },
    { name: 'rise 1 and fall 1 follow every result', over: { rise: 1, fall: 1 }, script: '+-+-', states: 'UDUD' },
  ];
  assert.ok(cases.length > 0);
  const letter: Record<HealthState, string> = { unknown: 'u', up: 'U', down: 'D', suspect: 'S' };
  for (const c of cases) {
    test(c.name, () => {
      const h = health(c.over);
      assert.equal(
        run(h, c.script)
          .map((s) => letter[s])
          .join(''),
        c.states,
      );
    });
  }

  test('a transition records its time, cause and a reason naming the failures', () => {
    const h = health({ rise: 1, fall: 2 });
    run(h, '+--');
    assert.equal(h.state, 'down');
    assert.equal(h.since, 3);
    assert.equal(h.cause, 'active');
    assert.match(h.reason, /^2 failed probes: fail/);
  });

  test('type none is up from the start and ignores probes and passive failures', () => {
    const h = health({ type: 'none' });
    assert.equal(h.state, 'up');
    run(h, '---');
    for (let i = 0; i < 10; i++) h.onPassiveFailure(i);
    assert.equal(h.state, 'up');
  });
});

describe('passive signals', () => {
  test('failures make an up backend suspect, then down at the threshold', () => {
    const h = health({ passiveSuspectAfter: 2, passiveDownAfter: 4 });
    run(h, '+');
    const seen = [1, 2, 3, 4].map((t) => (h.onPassiveFailure(t), h.state));
    assert.deepEqual(seen, ['up', 'suspect', 'suspect', 'down']);
    assert.equal(h.cause, 'passive');
  });

  test('a passive success clears suspicion but does not bring a down backend up', () => {
    const h = health({ passiveSuspectAfter: 1, passiveDownAfter: 3 });
    run(h, '+');
    h.onPassiveFailure(1);
    assert.equal(h.state, 'suspect');
    assert.deepEqual(h.onPassiveSuccess(2), {
      from: 'suspect',
      to: 'up',
      cause: 'passive',
      reason: 'data-path connection succeeded',
    });
    for (let t = 3; t < 6; t++) h.onPassiveFailure(t);
    assert.equal(h.state, 'down');
    assert.equal(h.onPassiveSuccess(7), null);
    assert.equal(h.state, 'down');
  });

  test('a passive success resets the run, so failures must be consecutive', () => {
    const h = health({ passiveSuspectAfter: 1, passiveDownAfter: 3 });
    run(h, '+');
    h.onPassiveFailure(1);
    h.onPassiveFailure(2);
    h.onPassiveSuccess(3);
    h.onPassiveFailure(4);
    h.onPassiveFailure(5);
    assert.equal(h.state, 'suspect');
  });

  test('after a passive down only rise good probes bring it back', () => {
    const h = health({ rise: 2, passiveSuspectAfter: 1, passiveDownAfter: 1 });
    run(h, '+');
    h.onPassiveFailure(1);
    assert.equal(h.state, 'down');
    assert.deepEqual(run(h, '++'), ['down', 'up']);
  });

  test('a good probe clears suspicion at once', () => {
    const h = health({ rise: 3, passiveSuspectAfter: 1, passiveDownAfter: 5 });
    run(h, '+');
    h.onPassiveFailure(1);
    assert.deepEqual(run(h, '+'), ['up']);
    assert.equal(h.passiveRun, 0);
  });

  test('passive failures do not move an unknown or down backend', () => {
    const h = health({ passiveSuspectAfter: 1, passiveDownAfter: 1 });
    assert.equal(h.onPassiveFailure(1), null);
    assert.equal(h.state, 'unknown');
  });
});

describe('flap damping penalty (RFC 2439 §4)', () => {
  const o = {
    ...DEFAULT_DAMPING,
    penaltyPerFlap: 1000,
    suppressAbove: 2500,
    reuseBelow: 1000,
    halfLifeMs: 1000,
    maxSuppressMs: 4000,
  };

  test('the penalty halves every half-life', () => {
    const d = new FlapDamper(o);
    d.flap(0);
    assert.equal(d.penaltyAt(0), 1000);
    assert.equal(d.penaltyAt(1000), 500);
    assert.equal(d.penaltyAt(3000), 125);
  });

  test('three quick flaps suppress; release comes when the penalty decays below reuse', () => {
    const d = new FlapDamper(o);
    assert.equal(d.flap(0), false);
    assert.equal(d.flap(0), false);
    assert.equal(d.flap(0), true);
    // 3000 → 1000 takes log2(3) half-lives = 1585 ms.
    assert.equal(d.releaseIn(0), 1585);
    assert.equal(d.update(1584), false);
    assert.equal(d.update(1585), true);
    assert.equal(d.suppressed, false);
  });

  test('flaps spread over time do not add up to suppression', () => {
    const d = new FlapDamper(o);
    for (let t = 0; t < 10_000; t += 2000) assert.equal(d.flap(t), false);
  });

  test('the penalty is capped so suppression lasts at most maxSuppressMs', () => {
    const d = new FlapDamper(o);
    for (let i = 0; i < 100; i++) d.flap(0);
    assert.equal(d.penaltyAt(0), 1000 * 2 ** 4);
    assert.equal(d.releaseIn(0), 4000);
  });

  test('disabled damping never suppresses', () => {
    const d = new FlapDamper({ ...o, enabled: false });
    for (let i = 0; i < 10; i++) assert.equal(d.flap(0), false);
    assert.equal(d.suppressed, false);
  });

  test('a suppressed backend goes down but is held down while its probes pass, then released', () => {
    const h = new BackendHealth(mergeCheck(DEFAULT_CHECK, { rise: 1, fall: 1, damping: o }), 0);
    // up, down, up, down, up, down: the third down pushes the penalty past 2500.
    run(h, '+-+-+-');
    assert.equal(h.state, 'down');
    assert.equal(h.suppressed, true);
    h.onProbe({ outcome: 'ok', detail: '', latencyMs: 0 }, 10);
    assert.equal(h.state, 'down');
    assert.equal(h.heldDown, true);
    assert.equal(h.cause, 'damping');
    const wait = h.releaseIn(10);
    assert.ok(wait > 0);
    assert.equal(h.onTick(10 + wait - 1), null);
    assert.deepEqual(h.onTick(10 + wait), {
      from: 'down',
      to: 'up',
      cause: 'damping',
      reason: 'flap damping released',
    });
  });
});
