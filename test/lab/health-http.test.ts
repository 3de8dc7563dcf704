// Health checking end to end in the lab (`lab up --health`: GET /health every 300 ms, rise 2,
// fall 2): a stopped backend server is marked down within fall × interval (+ one interval) and
// new connections avoid it while others keep theirs; started again it comes back after rise;
// /health answering 500 takes a backend down; drain keeps an established connection while new
// ones go elsewhere. Detection, recovery and steering delays are printed as diagnostics.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { labSkipReason } from '../helpers/net.js';
import { CLIENT, curlMany, keepAlive, labDown, labUp, LBS, urlOf, weir } from './dataplane-lab.js';
import {
  rows,
  serverPid,
  startServer,
  stopStarted,
  waitHealth as waitHealthIn,
  waitListening,
  waitSteered,
} from './health-lab.js';
import { VIPS } from '../../netns-lab/topology.js';
import { sleep, until } from '../helpers/wait.js';
import { LAB_HEALTH_CHECK as HC } from '../../netns-lab/weir-config.js';

const skip = labSkipReason();
const VIP = VIPS.find((v) => v.name === 'web-nat')!;
const WEB_VIPS = VIPS.filter((v) => v.protocol === 'tcp' && v.port === 80).map((v) => v.name);
/** The bound the issue sets, plus the probe in flight (timeout) and jitter on each probe. */
const DETECT_BOUND_MS = HC.fall * HC.interval_ms + HC.interval_ms + HC.fall * HC.jitter_ms + HC.timeout_ms;
const RECOVER_BOUND_MS = HC.rise * HC.interval_ms + HC.interval_ms + HC.rise * HC.jitter_ms + HC.timeout_ms;
/** Scheduling slack on a shared 2-core machine; the raw figures are printed. */
const SLACK_MS = 500;

/** Waits (bounded) until both instances show `backend` up in every web VIP (the CLI's view). */
async function waitAllUp(backend: string): Promise<void> {
  const mine = () =>
    LBS.map(rows)
      .flat()
      .filter((b) => b.name === backend && WEB_VIPS.includes(b.vip));
  await until(
    () => `${backend} is up everywhere (now: ${JSON.stringify(mine().map((b) => [b.vip, b.health]))})`,
    () => {
      const m = mine();
      return m.length === WEB_VIPS.length * LBS.length && m.every((b) => b.health === 'up');
    },
    { timeoutMs: 15_000, everyMs: 300 },
  );
}

interface StatusView {
  health: { lastRebuild: { decisionToPublishMs: number; decidedAtMs: number; generation: number } | null };
  dataplane: { generations?: number[]; firstPacketAt?: number[] };
}

/** Both instances' transitions of `backend` to `state` in every web VIP (web-nat first). */
const waitHealth = (backend: string, state: string, since: number) =>
  waitHealthIn(backend, state, since, [VIP.name, ...WEB_VIPS.filter((v) => v !== VIP.name)]);

/**
 * New connections one after another (each its own client port, so the Maglev picks vary), about
 * 25 a second for at most `seconds`: "<start ms> <http code> <backend>" per request.
 */
function newConnections(url: string, count: number, seconds: number, firstPort: number): { done: Promise<string[]> } {
  const script = `for p in $(seq ${firstPort} ${firstPort + count - 1}); do t=$(date +%s%3N); r=$(curl -s --max-time 1 --local-port $p -o /dev/null -w '%{http_code} %header{x-backend}' ${url}); echo "$t $r"; sleep 0.02; done`;
  const child = spawn('ip', ['netns', 'exec', CLIENT, 'timeout', String(seconds), 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
  });
  return { done: new Promise((r) => child.once('close', () => r(out.split('\n').filter((l) => l.length > 0)))) };
}

describe('health checks take backends out of and back into the Maglev tables in the lab', { skip }, () => {
  const started: ChildProcess[] = [];
  before(() => labUp(['--health']));
  after(() => {
    stopStarted(started);
    labDown();
  });

  test('every backend of every web VIP comes up on both instances after the first probes', async () => {
    assert.equal(WEB_VIPS.length, 6);
    for (const b of ['be1', 'be2', 'be3']) await waitAllUp(b);
    const r = curlMany(urlOf(VIP.address), 40, 10);
    assert.equal(r.failures, 0);
  });

  test('a stopped backend server is down within fall × interval (+ one interval); new connections avoid it, an established one to another backend is untouched; started again it is back after rise', async (t) => {
    const ka = keepAlive(urlOf(VIP.address), 24);
    const [, kaPort, kaBackend] = (await ka.first).split(' ');
    const victim = ['be1', 'be2', 'be3'].find((b) => b !== kaBackend)!;
    const ns = `weir-${victim}`;
    // Two sequential streams of new connections, so some hit the victim between stop and decision.
    const traffic = [
      newConnections(urlOf(VIP.address), 120, 15, 30000),
      newConnections(urlOf(VIP.address), 120, 15, 31000),
    ];
    await sleep(1000);

    const pid = serverPid(victim);
    const killedAt = Date.now();
    process.kill(pid, 'SIGTERM');
    const stoppedAt = await waitListening(ns, false);
    // From the kill, not from when `ss` saw the socket gone: a probe may fail in between.
    const down = await waitHealth(victim, 'down', killedAt);
    const detect = down.decisions.map((d) => d - killedAt);
    t.diagnostic(
      `${victim} stopped → down: ${detect.map((d, i) => `${LBS[i]} ${d} ms`).join(', ')} (bound ${DETECT_BOUND_MS} ms + ${SLACK_MS} ms slack)`,
    );
    // The probes decide (every web VIP); on web-nat, 5 refused connections would (passive) if they came first.
    t.diagnostic(
      `decided by: ${down.lines
        .filter((l) => l.vip === VIP.name)
        .map((l) => l.cause)
        .join(
          ', ',
        )} (web-nat), ${[...new Set(down.lines.filter((l) => l.vip !== VIP.name).map((l) => l.cause))].join(', ')} (other web VIPs)`,
    );
    for (const l of down.lines)
      assert.ok(
        l.cause === 'active' || (l.cause === 'passive' && l.vip === VIP.name),
        `${l.vip}: decided by ${l.cause}`,
      );
    for (const d of detect) assert.ok(d >= 0 && d <= DETECT_BOUND_MS + SLACK_MS, `detected in ${d} ms`);

    const lines = (await Promise.all(traffic.map((x) => x.done))).flat();
    assert.ok(lines.length > 20, `new connections ran (${lines.length})`);
    const decided = Math.max(...down.decisions);
    const failed = lines.filter((l) => l.split(' ')[1] !== '200').map((l) => Number(l.split(' ')[0]));
    const toVictimAfter = lines.filter((l) => l.endsWith(` ${victim}`) && Number(l.split(' ')[0]) > decided);
    const lastFail = failed.length ? Math.max(...failed) : null;
    // A connection in flight when the server got SIGTERM may fail with it: count from 100 ms before the kill.
    const before = failed.filter((f) => f < killedAt - 100).length;
    const toVictimBefore = lines.filter((l) => l.endsWith(` ${victim}`) && Number(l.split(' ')[0]) < stoppedAt).length;
    const inWindow = lines.filter((l) => {
      const x = Number(l.split(' ')[0]);
      return x >= stoppedAt && x <= decided;
    }).length;
    t.diagnostic(
      `stream: ${toVictimBefore} connections reached ${victim} before the stop, ${inWindow} started between the stop and the later decision`,
    );
    t.diagnostic(
      `new connections: ${lines.length}, ${failed.length} failed (${before} before the stop); last failure started ${lastFail === null ? '-' : `${lastFail - decided} ms`} after the later decision (negative: before it)`,
    );
    assert.equal(before, 0, 'no new connection failed before the server was stopped');
    assert.equal(toVictimAfter.length, 0, `no new connection started after the decision reached ${victim}`);
    // A failing connection takes at most 1 s (curl --max-time) and the table is published within ms of the decision.
    assert.ok(
      lastFail === null || lastFail - decided <= 100 + SLACK_MS,
      `no new connection failed later than 100 ms (+ slack) after the decision: ${lastFail! - decided} ms`,
    );
    const st = LBS.map((n) => weir<StatusView>(n, ['status']));
    t.diagnostic(
      `decision → tables published: ${st.map((x, i) => `${LBS[i]} ${x.health.lastRebuild?.decisionToPublishMs} ms`).join(', ')}`,
    );
    // Decision → the first batch a worker processed with the tables it published (the last rebuild's
    // generation; the earliest worker that has it and saw traffic since). A figure, not a bound.
    const steer = st.map((x) => {
      const r = x.health.lastRebuild;
      const gens = x.dataplane.generations ?? [],
        first = x.dataplane.firstPacketAt ?? [];
      const at = gens.map((g, w) => (r && g === r.generation && first[w] > 0 ? first[w] : Infinity));
      const t0 = Math.min(...at);
      return r && Number.isFinite(t0) ? Math.round((t0 - r.decidedAtMs) * 1000) / 1000 : null;
    });
    t.diagnostic(
      `decision → first packet steered by the new table: ${steer.map((d, i) => `${LBS[i]} ${d} ms`).join(', ')}`,
    );
    for (const d of steer)
      assert.ok(d !== null && d >= 0, `a worker processed packets with the new table after the decision (${d} ms)`);
    const fresh = curlMany(urlOf(VIP.address), 40, 10);
    assert.equal(fresh.failures, 0, 'new connections all succeed');
    assert.ok(!fresh.lines.some((l) => l.startsWith(`${victim} `)), `no new connection reaches ${victim}`);

    await ka.done;
    assert.equal(ka.lines.length, 24, 'every request on the established connection was answered');
    for (const l of ka.lines)
      assert.equal(l, `W ${kaPort} ${kaBackend} 200`, 'same connection, same backend, HTTP 200');

    const startedAt = Date.now();
    startServer(victim, started);
    const listeningAt = await waitListening(ns, true);
    const up = await waitHealth(victim, 'up', startedAt);
    const recover = up.decisions.map((d) => d - listeningAt);
    t.diagnostic(
      `${victim} listening again → up: ${recover.map((d, i) => `${LBS[i]} ${d} ms`).join(', ')} (bound ${RECOVER_BOUND_MS} ms + ${SLACK_MS} ms slack)`,
    );
    for (const d of recover)
      assert.ok(d >= startedAt - listeningAt && d <= RECOVER_BOUND_MS + SLACK_MS, `recovered in ${d} ms`);
    await waitSteered(up.last);
    const back = curlMany(urlOf(VIP.address), 60, 10);
    assert.equal(back.failures, 0);
    assert.ok(
      back.lines.some((l) => l.startsWith(`${victim} `)),
      `new connections reach ${victim} again`,
    );
  });

  test('a backend whose /health answers 500 is down (status 500) and takes no new connections; answering 200 again it comes back', async (t) => {
    const victim = 'be3';
    const pid = serverPid(victim);
    const at = Date.now();
    process.kill(pid, 'SIGUSR1');
    const down = await waitHealth(victim, 'down', at);
    const detect = down.decisions.map((d) => d - at);
    t.diagnostic(
      `${victim} /health 500 → down: ${detect.map((d, i) => `${LBS[i]} ${d} ms`).join(', ')} (bound ${DETECT_BOUND_MS} ms + ${SLACK_MS} ms slack)`,
    );
    for (const d of detect) assert.ok(d >= 0 && d <= DETECT_BOUND_MS + SLACK_MS, `detected in ${d} ms`);
    for (const l of down.lines) assert.match(l.reason ?? '', /status 500/, `${l.vip}: the probes saw the 500`);
    await waitSteered(down.last);
    for (const r of LBS.map(rows)
      .flat()
      .filter((b) => b.name === victim && WEB_VIPS.includes(b.vip)))
      assert.match(r.lastProbe?.detail ?? '', /status 500/, `${r.vip}: weir backends shows the last probe's 500`);
    const r = curlMany(urlOf(VIP.address), 40, 10);
    assert.equal(r.failures, 0);
    assert.ok(!r.lines.some((l) => l.startsWith(`${victim} `)), `no new connection reaches ${victim}`);
    const healed = Date.now();
    process.kill(pid, 'SIGUSR1');
    const up = await waitHealth(victim, 'up', healed);
    await waitSteered(up.last);
    const back = curlMany(urlOf(VIP.address), 60, 10);
    assert.equal(back.failures, 0);
    assert.ok(
      back.lines.some((l) => l.startsWith(`${victim} `)),
      `new connections reach ${victim} again`,
    );
  });

  test('drain keeps an established connection on its backend while new connections go elsewhere; undrain brings it back', async () => {
    const ka = keepAlive(urlOf(VIP.address), 16);
    const [, port, backend] = (await ka.first).split(' ');
    for (const ns of LBS)
      assert.equal(weir<{ drained: boolean }>(ns, ['backend', 'drain', VIP.name, backend]).drained, true);
    try {
      const r = curlMany(urlOf(VIP.address), 40, 10);
      assert.equal(r.failures, 0);
      assert.ok(!r.lines.some((l) => l.startsWith(`${backend} `)), `no new connection reaches the drained ${backend}`);
      await ka.done;
      assert.equal(ka.lines.length, 16, 'every request on the established connection was answered');
      for (const l of ka.lines) assert.equal(l, `W ${port} ${backend} 200`, 'same connection, same backend, HTTP 200');
      const h = LBS.map(rows)
        .flat()
        .filter((b) => b.vip === VIP.name && b.name === backend);
      for (const b of h) assert.equal(b.health, 'up', 'a drained backend is still probed and up');
    } finally {
      for (const ns of LBS) weir(ns, ['backend', 'undrain', VIP.name, backend]);
    }
    const back = curlMany(urlOf(VIP.address), 60, 10);
    assert.equal(back.failures, 0);
    assert.ok(
      back.lines.some((l) => l.startsWith(`${backend} `)),
      `new connections reach ${backend} again`,
    );
  });
});
