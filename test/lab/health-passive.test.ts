// Passive health signals end to end in the lab (`lab up --health=passive`: HTTP probes only every
// 8 s, fall 3, rise 1; passive_suspect_after 1, passive_down_after 5). In nat mode weir sees the
// backends' answers: a stopped server answers SYNs with RST, a backend whose firewall drops SYNs
// leaves them unanswered and the clients retransmit. Five such failures take the backend down on
// each instance long before two probes could; new connections then avoid it; only an active
// probe brings it back. Two data-plane workers per instance. The kernel's TCP stack on the client
// (curl) is the judge of the traffic.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { labSkipReason } from '../helpers/net.js';
import { CLIENT, curlMany, labDown, labUp, LBS, urlOf, weir } from './dataplane-lab.js';
import { rows, serverPid, startServer, stopStarted, waitHealth, waitListening, waitSteered } from './health-lab.js';
import { sleep } from '../helpers/wait.js';
import { VIPS } from '../../netns-lab/topology.js';
import { LAB_PASSIVE_HEALTH_CHECK as HC } from '../../netns-lab/weir-config.js';

const skip = labSkipReason();
const VIP = VIPS.find((v) => v.name === 'web-nat')!;
/** Scheduling slack on a shared 2-core machine; the raw figures are printed. */
const SLACK_MS = 500;
/**
 * The earliest the probes could take a backend down after it started failing: a regular probe
 * and the immediate probe of the suspect state may both fail at once, the third (fall 3) comes
 * an interval after the immediate one.
 */
const ACTIVE_EARLIEST_MS = HC.interval_ms;
/**
 * Back after rise good probes, plus one interval (as the active-probe test allows: the first probe
 * after the restart may still fail or time out while the new server warms up), jitter and timeout.
 */
const RECOVER_BOUND_MS = (HC.rise + 1) * HC.interval_ms + HC.jitter_ms + HC.timeout_ms;

interface Status {
  dataplane: { counters?: Record<string, number> };
}

const counter = (ns: string, name: string): number => weir<Status>(ns, ['status']).dataplane.counters?.[name] ?? 0;

/**
 * `count` new connections to `url`, one after another with `gapMs` between them, from client
 * ports firstPort.., each bounded by curl --max-time 1 s and the whole by `seconds`:
 * "<start ms> <http code> <backend>" per connection (code 000: failed).
 */
function sequential(url: string, firstPort: number, count: number, gapMs: number, seconds: number): Promise<string[]> {
  const script = `for p in $(seq ${firstPort} ${firstPort + count - 1}); do t=$(date +%s%3N); r=$(curl -s --max-time 1 --local-port $p -o /dev/null -w '%{http_code} %header{x-backend}' ${url}); echo "$t $r"; sleep ${gapMs / 1000}; done`;
  return run(script, seconds);
}

/**
 * `count` new connections to `url`, `parallel` at a time from one curl (Connection: close, so
 * none is reused), each bounded by --max-time `maxTime` s and the whole by `seconds`:
 * "<http code> <backend>" per connection (code 000: failed).
 */
function parallel(
  url: string,
  count: number,
  parallelMax: number,
  maxTime: number,
  seconds: number,
): Promise<string[]> {
  const script = `curl -s --parallel --parallel-immediate --parallel-max ${parallelMax} --max-time ${maxTime} -H 'Connection: close' -w '%{http_code} %header{x-backend}\\n' ${Array.from({ length: count }, () => `-o /dev/null ${url}`).join(' ')}`;
  return run(script, seconds);
}

function run(script: string, seconds: number): Promise<string[]> {
  const child = spawn('ip', ['netns', 'exec', CLIENT, 'timeout', String(seconds), 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
  });
  return new Promise((r) => child.once('close', () => r(out.split('\n').filter((l) => /^(\d+ )?\d{3}( |$)/.test(l)))));
}

const startOf = (l: string): number => Number(l.split(' ')[0]);
/** The HTTP code of a sequential() or parallel() line. */
const codeOf = (l: string): string => (/^\d{4,} /.test(l) ? l.split(' ')[1] : l.split(' ')[0]);

/** nftables in a backend's namespace that drops incoming SYNs to port 80 (the host is up, the service silent). */
function blockSyns(ns: string, on: boolean): void {
  const script = on
    ? 'table inet weir_synblock {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport 80 tcp flags & (syn | ack) == syn drop\n }\n}\n'
    : 'delete table inet weir_synblock';
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
  assert.equal(r.status, 0, `nft in ${ns}: ${r.stderr}`);
}

describe('passive health signals in nat mode take a failing backend down before the probes could', { skip }, () => {
  const started: ChildProcess[] = [];
  before(() => labUp(['--health=passive', '--workers=2'])); // two workers: a SYN and its answer usually reach different ones
  after(() => {
    stopStarted(started);
    labDown();
  });

  test('every backend of web-nat is up on both instances after the first probes', async () => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const mine = LBS.map(rows)
        .flat()
        .filter((b) => b.vip === VIP.name);
      if (mine.length === 3 * LBS.length && mine.every((b) => b.health === 'up')) break;
      if (Date.now() > deadline)
        assert.fail(`web-nat not up everywhere within 15 s: ${JSON.stringify(mine.map((b) => [b.name, b.health]))}`);
      await sleep(300);
    }
    const r = curlMany(urlOf(VIP.address), 30, 10);
    assert.equal(r.failures, 0);
  });

  test('a stopped server answers SYNs with RST: 5 refused connections take it down (cause passive); new connections avoid it; only a probe brings it back', async (t) => {
    const victim = 'be3';
    const before = LBS.map((ns) => counter(ns, 'synRst'));
    process.kill(serverPid(victim), 'SIGTERM');
    const stoppedAt = await waitListening(`weir-${victim}`, false);
    // Two sequential streams of new connections, about 50 a second in all, for at most 8 s.
    const traffic = Promise.all([
      sequential(urlOf(VIP.address), 30000, 100, 20, 8),
      sequential(urlOf(VIP.address), 31000, 100, 20, 8),
    ]);
    const down = await waitHealth(victim, 'down', stoppedAt, [VIP.name], 8000);
    const detect = down.decisions.map((d) => d - stoppedAt);
    t.diagnostic(
      `${victim} stopped → down by passive signals: ${detect.map((d, i) => `${LBS[i]} ${d} ms`).join(', ')} (the probes could not decide before ${ACTIVE_EARLIEST_MS} ms)`,
    );
    for (const l of down.lines) {
      assert.equal(l.cause, 'passive', `${l.vip}: the data path decided`);
      assert.match(l.reason ?? '', new RegExp(`^${HC.passive_down_after} consecutive data-path failures`));
    }
    for (const d of detect) assert.ok(d >= 0 && d < ACTIVE_EARLIEST_MS, `down after ${d} ms, before the probes could`);
    for (const r of LBS.map(rows)
      .flat()
      .filter((b) => b.vip === VIP.name && b.name === victim)) {
      assert.equal(r.health, 'down');
      assert.equal(r.healthCause, 'passive', 'weir backends says why');
    }
    const rst = LBS.map((ns, i) => counter(ns, 'synRst') - before[i]);
    t.diagnostic(`RSTs in answer to SYNs counted: ${rst.map((n, i) => `${LBS[i]} ${n}`).join(', ')}`);
    for (const n of rst)
      assert.ok(n >= HC.passive_down_after, `each instance counted at least ${HC.passive_down_after} RSTs (${n})`);

    const lines = (await traffic).flat();
    const decided = Math.max(...down.decisions);
    const failed = lines.filter((l) => codeOf(l) !== '200');
    const lateFailures = failed.filter((l) => startOf(l) > decided + 100 + SLACK_MS);
    t.diagnostic(
      `new connections: ${lines.length}, ${failed.length} refused (all started before ${decided + 100 + SLACK_MS - stoppedAt} ms after the stop: ${lateFailures.length === 0})`,
    );
    assert.ok(lines.length > 50, `new connections ran (${lines.length})`);
    assert.ok(failed.length >= HC.passive_down_after, 'some connections reached the stopped server and were refused');
    assert.deepEqual(lateFailures, [], 'no new connection failed later than 100 ms (+ slack) after the later decision');

    // The server listens again; nothing passive can bring it back (no flow goes to it): the next probe does.
    const startedAt = Date.now();
    startServer(victim, started);
    const listeningAt = await waitListening(`weir-${victim}`, true);
    const up = await waitHealth(victim, 'up', startedAt, [VIP.name], RECOVER_BOUND_MS + SLACK_MS + 2000);
    const recover = up.decisions.map((d) => d - listeningAt);
    t.diagnostic(
      `${victim} listening again → up: ${recover.map((d, i) => `${LBS[i]} ${d} ms`).join(', ')} (bound ${RECOVER_BOUND_MS} ms + ${SLACK_MS} ms slack)`,
    );
    for (const l of up.lines) assert.equal(l.cause, 'active', `${l.vip}: a probe brought it back`);
    for (const d of recover)
      assert.ok(d >= startedAt - listeningAt && d <= RECOVER_BOUND_MS + SLACK_MS, `up after ${d} ms`);
    await waitSteered(up.last);
    const back = curlMany(urlOf(VIP.address), 60, 10);
    assert.equal(back.failures, 0);
    assert.ok(
      back.lines.some((l) => l.startsWith(`${victim} `)),
      `new connections reach ${victim} again`,
    );
  });

  test('a backend whose SYNs go unanswered (the clients retransmit) is down after 5 such connections (cause passive); a probe brings it back', async (t) => {
    const victim = 'be1';
    const before = LBS.map((ns) => counter(ns, 'synUnanswered'));
    blockSyns(`weir-${victim}`, true);
    let blocked = true;
    try {
      const at = Date.now();
      // 160 connections, 60 at a time; those to the victim wait 2.5 s (two SYNs: Linux retransmits after 1 s).
      const traffic = parallel(urlOf(VIP.address), 160, 60, 2.5, 15);
      const down = await waitHealth(victim, 'down', at, [VIP.name], 8000);
      const detect = down.decisions.map((d) => d - at);
      t.diagnostic(
        `SYNs dropped → down by passive signals: ${detect.map((d, i) => `${LBS[i]} ${d} ms`).join(', ')} after the first connection (the client retransmits after 1 s; the probes could not decide before ${ACTIVE_EARLIEST_MS} ms)`,
      );
      for (const l of down.lines) {
        assert.equal(l.cause, 'passive', `${l.vip}: the data path decided`);
        assert.match(l.reason ?? '', new RegExp(`^${HC.passive_down_after} consecutive data-path failures`));
      }
      for (const d of detect)
        assert.ok(
          d >= 1000 && d < ACTIVE_EARLIEST_MS,
          `down after ${d} ms: after the first retransmission, before the probes could`,
        );
      const unanswered = LBS.map((ns, i) => counter(ns, 'synUnanswered') - before[i]);
      t.diagnostic(
        `retransmitted SYNs without an answer counted: ${unanswered.map((n, i) => `${LBS[i]} ${n}`).join(', ')}`,
      );
      for (const n of unanswered)
        assert.ok(n >= HC.passive_down_after, `each instance counted at least ${HC.passive_down_after} (${n})`);
      const lines = await traffic;
      assert.equal(lines.length, 160, 'every connection finished within its bound');
      await waitSteered(down.last);
      assert.ok(
        lines.filter((l) => codeOf(l) !== '200').length >= HC.passive_down_after,
        'some connections reached the silent backend',
      );
      const fresh = curlMany(urlOf(VIP.address), 40, 10);
      assert.equal(fresh.failures, 0, 'new connections all succeed');
      assert.ok(!fresh.lines.some((l) => l.startsWith(`${victim} `)), `no new connection reaches ${victim}`);

      const openedAt = Date.now(); // before the rule goes: a probe may succeed at once
      blockSyns(`weir-${victim}`, false);
      blocked = false;
      const up = await waitHealth(victim, 'up', openedAt, [VIP.name], RECOVER_BOUND_MS + SLACK_MS + 2000);
      for (const l of up.lines) assert.equal(l.cause, 'active', `${l.vip}: a probe brought it back`);
      t.diagnostic(
        `SYNs answered again → up: ${up.decisions.map((d, i) => `${LBS[i]} ${d - openedAt} ms`).join(', ')}`,
      );
    } finally {
      if (blocked) blockSyns(`weir-${victim}`, false);
    }
  });
});
