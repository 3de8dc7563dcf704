// The weir cluster behind FRR as production routers run it (issue 19): `lab up --bgp=frr --bfd
// --md5 --gr` makes weir-router run FRR (zebra, bgpd, bfdd) with TCP-MD5 on every session, BFD
// 100 ms × 3 beside a 9 s hold time, and graceful restart. FRR and its kernel judge: one ECMP route
// per VIP with a nexthop per instance; a planned restart of an instance keeps its nexthop all along
// and, with the connection table restored, its nat connections live on; a frozen instance leaves
// the routes in under 1 s.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { labSkipReason } from '../helpers/net.js';
import { sleep, timed, until } from '../helpers/wait.js';
import { LB_ADDR, LBS, labDown, labStatus, labUp, weir } from './dataplane-lab.js';
import { restartWeir, routerSessions, vtysh } from '../../netns-lab/lab.js';
import { KeepAlive, alive, carriedBy, nexthops, routedVia } from './cluster-lab.js';
import type { BgpSpeakerStatus } from '../../src/control/api.js';

const skip =
  labSkipReason() ??
  (spawnSync('/usr/lib/frr/bgpd', ['--version']).status === 0
    ? undefined
    : 'FRR (`frr`: /usr/lib/frr/bgpd) is not installed') ??
  (spawnSync('id', ['frr']).status === 0 ? undefined : 'FRR needs the frr user');

const HOLD = 9;
const NAT_VIP = '198.18.100.1';

interface FrrNeighbor {
  bgpState?: string;
  neighborCapabilities?: { gracefulRestart?: string; routeRefresh?: string };
  gracefulRestartInfo?: { rBit?: boolean; ipv4Unicast?: { fBit?: boolean } };
}
const neighbor = (ns: string): FrrNeighbor => {
  const a = LB_ADDR[ns].v4;
  try {
    return (JSON.parse(vtysh(`show bgp neighbors ${a} json`) || '{}') as Record<string, FrrNeighbor>)[a] ?? {};
  } catch {
    return {};
  }
};
const bfdStatus = (ns: string): string | undefined => {
  try {
    return (JSON.parse(vtysh('show bfd peers json') || '[]') as { peer: string; status: string }[]).find(
      (p) => p.peer === LB_ADDR[ns].v4,
    )?.status;
  } catch {
    return undefined;
  }
};
const pidOf = (ns: string): number => labStatus().weir.find((w) => w.ns === ns)!.pid!;

describe('a weir cluster behind FRR with TCP-MD5, BFD and graceful restart', { skip }, () => {
  const clients: KeepAlive[] = [];
  before(() => labUp(['--bgp=frr', '--bfd', '--md5', '--gr']));
  after(() => {
    for (const c of clients) c.kill();
    labDown();
  });

  test('FRR has one kernel route per VIP with a nexthop per instance; every session is signed, has BFD Up and graceful restart', async () => {
    assert.deepEqual(routerSessions(), { 'weir-lb1': 'Established', 'weir-lb2': 'Established' });
    assert.ok(routedVia(LBS), `ECMP routes: ${JSON.stringify(nexthops())}`);
    await until(
      () => `BFD is up on every session (now: ${LBS.map(bfdStatus).join(', ')})`,
      () => LBS.every((ns) => bfdStatus(ns) === 'up'),
      { timeoutMs: 10_000 },
    );
    for (const ns of LBS) {
      assert.match(neighbor(ns).neighborCapabilities?.gracefulRestart ?? '', /advertisedAndReceived/, ns);
      const p = weir<BgpSpeakerStatus>(ns, ['bgp']).peers[0];
      assert.deepEqual(
        [p.state, p.md5, p.bfd?.state, p.holdTime, p.capabilities.negotiated.includes('graceful-restart')],
        ['Established', true, 'Up', HOLD, true],
        ns,
      );
    }
  });

  test('a planned restart of an instance keeps its nexthop in every ECMP route all along, and the nat connections it carried live on with their backend', async (t) => {
    const victim = 'weir-lb2';
    const ka = new KeepAlive(NAT_VIP, 32000);
    clients.push(ka);
    const before = await ka.warm();
    assert.deepEqual(
      before.conns.filter((c) => c.answers < 2 || c.errors.length > 0),
      [],
      'nat connections not working before the restart',
    );
    const carried = carriedBy(NAT_VIP, new Set(before.conns.map((c) => c.localPort)));
    assert.ok(carried[victim].length > 0, `${victim} carries none of the nat connections: ${JSON.stringify(carried)}`);
    // A sampler in the router namespace: a line per 10 ms sample whose route to the VIP lacks the victim (bounded: 30 s).
    const sampler = spawn(
      'ip',
      [
        'netns',
        'exec',
        'weir-router',
        'bash',
        '-c',
        `end=$((SECONDS+30)); while [ $SECONDS -lt $end ]; do ip route show ${NAT_VIP} | grep -q 'via ${LB_ADDR[victim].v4} ' || echo gone; sleep 0.01; done`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let gaps = 0;
    sampler.stdout.on(
      'data',
      (d: Buffer) =>
        (gaps += d
          .toString()
          .split('\n')
          .filter((l) => l === 'gone').length),
    );
    let back = 0;
    try {
      const pid = pidOf(victim);
      const t0 = Date.now();
      process.kill(pid, 'SIGUSR2');
      await until(`${victim} stops on SIGUSR2`, () => !alive(pid), { timeoutMs: 10_000, everyMs: 20 });
      restartWeir(victim);
      // The new process restored the flows it carried (before its data plane started) and is back in the session.
      const now = carriedBy(NAT_VIP, new Set(carried[victim]), [victim])[victim];
      assert.deepEqual(now, carried[victim], 'the restarted instance has every connection it carried');
      await until(
        () => `${victim} is back with End-of-RIB sent (FRR: ${JSON.stringify(neighbor(victim).bgpState)})`,
        () =>
          neighbor(victim).bgpState === 'Established' &&
          !weir<BgpSpeakerStatus>(victim, ['bgp']).gracefulRestart.endOfRibHeld,
        { timeoutMs: 20_000 },
      );
      back = Date.now();
      t.diagnostic(`planned restart of ${victim}: SIGUSR2 → session back, End-of-RIB sent after ${back - t0} ms`);
      const gr = neighbor(victim).gracefulRestartInfo;
      assert.deepEqual(
        [gr?.rBit, gr?.ipv4Unicast?.fBit],
        [true, true],
        'FRR saw the restart (R) and the kept forwarding state (F)',
      );
      await sleep(3000); // traffic goes on through the restarted instance
    } finally {
      spawnSync('kill', [String(sampler.pid)]);
    }
    assert.equal(gaps, 0, `the router's route to ${NAT_VIP} lacked ${victim} in ${gaps} samples`);
    const after = await ka.stop();
    const moved = new Set(carried[victim]);
    const rows = after.conns
      .filter((c) => moved.has(c.localPort))
      .map((c) => {
        const first = before.conns.find((b) => b.localPort === c.localPort)!.backends[0];
        return {
          port: c.localPort,
          sameBackend: c.backends.every((b) => b === first),
          answeredAfter: c.last > back,
          errors: c.errors,
        };
      });
    const broken = rows.filter((r) => r.errors.length > 0 || !r.sameBackend || !r.answeredAfter);
    t.diagnostic(
      `${rows.length - broken.length}/${rows.length} nat connections ${victim} carried survived its restart`,
    );

    assert.deepEqual(broken, [], 'nat connections of the restarted instance that broke');
  });

  test(`SIGSTOP of an instance: BFD takes its nexthop out of every VIP route in under 1 s (hold time ${HOLD} s); SIGCONT puts it back`, async (t) => {
    await until(
      () => `both instances are routed with BFD up (now: ${JSON.stringify(nexthops())})`,
      () => routedVia(LBS) && LBS.every((ns) => bfdStatus(ns) === 'up'),
      { timeoutMs: 20_000 },
    );
    const pid = pidOf('weir-lb1');
    process.kill(pid, 'SIGSTOP');
    let gone: number;
    try {
      gone = await timed(
        until(
          () => `weir-lb1 is no longer a nexthop (now: ${JSON.stringify(nexthops())})`,
          () => routedVia(['weir-lb2']),
          { timeoutMs: HOLD * 1000 + 3000, everyMs: 5 },
        ),
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    t.diagnostic(`SIGSTOP weir-lb1 → its nexthop gone from every VIP route in FRR's kernel after ${gone} ms`);
    assert.ok(gone < 1000, `nexthop gone after ${gone} ms, not under 1 s`);
    const again = await timed(
      until(
        () => `weir-lb1 is back in the routes (now: ${JSON.stringify(nexthops())})`,
        () => routedVia(LBS),
        { timeoutMs: 30_000, everyMs: 20 },
      ),
    );
    t.diagnostic(`SIGCONT → weir-lb1 back in every VIP route after ${again} ms`);
  });
});
