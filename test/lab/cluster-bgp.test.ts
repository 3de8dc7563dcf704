// The weir cluster behind a BGP router (issue 9): `lab up --bgp` makes weir-router run BIRD 2,
// which learns every VIP from both weir instances and installs one kernel ECMP route per VIP.
// The promise of the design: when one instance dies, the router moves its flows to the other,
// which picks the same backend from the same Maglev table, so long-lived DSR connections live on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import { labSkipReason } from '../helpers/net.js';
import { sleep, timed, until } from '../helpers/wait.js';
import { LB_ADDR, LBS, labDown, labStatus, labUp, weir } from './dataplane-lab.js';
import { birdc, restartWeir, routerRoutes, routerSessions } from '../../netns-lab/lab.js';
import { HOLD_TIME, SHUTDOWN_WAIT_MS } from '../../netns-lab/router-bgp.js';
import {
  BACKENDS,
  CONNS,
  KeepAlive,
  VIP_ADDRESSES,
  alive,
  carriedBy,
  gatewaysOf,
  nexthops,
  routedVia,
  type ConnReport,
} from './cluster-lab.js';

const skip =
  labSkipReason() ?? (spawnSync('bird', ['--version']).status === 0 ? undefined : 'BIRD 2 (`bird`) is not installed');

interface VipYaml {
  name: string;
  address: string;
  port: number;
  [k: string]: unknown;
}

/** Rewrites both instances' configs with `edit` applied to the VIP list, then `weir reload`s each. */
function reloadAll(edit: (vips: VipYaml[]) => VipYaml[]): void {
  for (const w of labStatus().weir) {
    const doc = YAML.parse(readFileSync(w.config, 'utf8')) as { vips: VipYaml[] };
    doc.vips = edit(doc.vips);
    writeFileSync(w.config, YAML.stringify(doc));
    const r = weir<{ ok: boolean }>(w.ns, ['reload']);
    assert.equal(r.ok, true, `${w.ns} reloaded`);
  }
}

describe('a weir cluster behind a BGP router: BIRD 2 merges both instances into ECMP routes', { skip }, () => {
  const clients: KeepAlive[] = [];
  const listeners: ChildProcess[] = [];
  before(() => labUp(['--bgp']));
  after(() => {
    for (const c of clients) c.kill();
    for (const l of listeners) l.kill('SIGKILL');
    labDown();
  });

  test('BIRD learns every VIP, IPv4 and IPv6, from both instances and the kernel has one route per VIP with a nexthop per instance', () => {
    assert.ok(VIP_ADDRESSES.length >= 6, 'the lab has v4 and v6 VIP addresses');
    assert.deepEqual(routerSessions(), { 'weir-lb1': 'Established', 'weir-lb2': 'Established' });
    const table = birdc('show', 'route');
    for (const a of VIP_ADDRESSES) {
      const prefix = `${a}/${a.includes(':') ? 128 : 32}`;
      const block = table
        .slice(table.indexOf(`${prefix} `))
        .split('\n')
        .slice(0, 4)
        .join('\n');
      assert.ok(table.includes(`${prefix} `), `BIRD has ${prefix}`);
      for (const ns of LBS) {
        const via = a.includes(':') ? LB_ADDR[ns].v6 : LB_ADDR[ns].v4;
        assert.match(
          block,
          new RegExp(`\\[${ns.replace(/^weir-/, '')} .*\\[AS65010i\\]\\n\\s+via ${via.replace(/\./g, '\\.')} on fab0`),
          `${prefix} from ${ns}:\n${block}`,
        );
      }
    }
    const nh = nexthops();
    for (const a of VIP_ADDRESSES)
      assert.deepEqual(nh[a], gatewaysOf(LBS)(a), `kernel route to ${a}: ${JSON.stringify(nh[a])}`);
    // No static routes in BGP mode: every VIP route is BIRD's.
    const raw = spawnSync('ip', ['netns', 'exec', 'weir-router', 'ip', '-j', 'route', 'show', 'proto', 'static'], {
      encoding: 'utf8',
    }).stdout;
    assert.deepEqual(JSON.parse(raw), []);
  });

  test('a VIP whose backends all fail their health check is withdrawn by every instance, and announced again when they pass', async (t) => {
    // A dedicated VIP address whose health check probes port 8081, where this test runs its own
    // listener on each backend: stopping the three listeners fails every backend on both instances.
    const address = '198.18.100.9';
    const listen = () =>
      BACKENDS.map((ns) =>
        spawn(
          'ip',
          [
            'netns',
            'exec',
            ns,
            process.execPath,
            '-e',
            "require('node:net').createServer((c) => c.destroy()).listen(8081, '::'); setTimeout(() => process.exit(0), 120000)",
          ],
          { stdio: 'ignore' },
        ),
      );
    listeners.push(...listen());
    const check = {
      type: 'tcp',
      port: 8081,
      interval_ms: 200,
      timeout_ms: 150,
      jitter_ms: 0,
      rise: 1,
      fall: 2,
      damping: { enabled: false },
    };
    reloadAll((vips) => [
      ...vips,
      { ...vips.find((v) => v.name === 'web-nat')!, name: 'web-bgp-check', address, health_check: check },
    ]);
    const routed = () =>
      JSON.stringify([...(routerRoutes()[address] ?? [])].sort()) === JSON.stringify(gatewaysOf(LBS)(address));
    const up = await timed(
      until(() => `${address} is routed via both (now: ${JSON.stringify(routerRoutes()[address])})`, routed, {
        timeoutMs: 10_000,
        everyMs: 20,
      }),
    );
    t.diagnostic(`new VIP with healthy backends → ECMP route via both instances: ${up} ms`);
    const t0 = Date.now();
    for (const l of listeners.splice(0)) l.kill('SIGKILL');
    await until(
      () => `${address} is withdrawn (now: ${JSON.stringify(routerRoutes()[address])})`,
      () => routerRoutes()[address] === undefined,
      { timeoutMs: 10_000, everyMs: 20 },
    );
    const gone = Date.now() - t0;
    assert.ok(!birdc('show', 'route').includes(`${address}/32`), 'BIRD has no route to the VIP from either instance');
    for (const ns of LBS) {
      const st = weir<{ bgp: { announced: string[] } }>(ns, ['status']);
      assert.ok(!st.bgp.announced.includes(`${address}/32`), `${ns} withdrew ${address}/32`);
      assert.ok(st.bgp.announced.includes('198.18.100.2/32'), `${ns} still announces the healthy VIPs`);
    }
    t.diagnostic(`check listeners stopped → route gone from the router: ${gone} ms (fall 2 × interval 200 ms)`);
    listeners.push(...listen());
    const again = await timed(
      until(() => `${address} is announced again (now: ${JSON.stringify(routerRoutes()[address])})`, routed, {
        timeoutMs: 10_000,
        everyMs: 20,
      }),
    );
    t.diagnostic(`listeners back → ECMP route via both instances again: ${again} ms`);
    reloadAll((vips) => vips.filter((v) => v.name !== 'web-bgp-check'));
    for (const l of listeners.splice(0)) l.kill('SIGKILL');
  });

  test(`SIGKILL of one instance: ${CONNS} long-lived connections each to a dsr-gre and a dsr-l2 VIP move to the other instance with no reset and keep their backend`, async (t) => {
    const runs = [
      { vip: '198.18.100.2', mode: 'dsr-gre', ka: new KeepAlive('198.18.100.2', 31000) },
      { vip: '198.18.100.3', mode: 'dsr-l2', ka: new KeepAlive('198.18.100.3', 31100) },
    ];
    clients.push(...runs.map((r) => r.ka));
    // Every connection answers a few times before the kill.
    const before: Record<string, { conns: ConnReport[] }> = {};
    for (const r of runs) {
      before[r.vip] = await r.ka.warm();
      const bad = before[r.vip].conns.filter((c) => c.answers < 2 || c.errors.length > 0);
      assert.deepEqual(bad, [], `${r.mode}: connections not working before the kill`);
    }
    // ECMP spreads the flows: both instances carry some of each VIP's connections.
    const carried: Record<string, Record<string, number[]>> = {};
    for (const r of runs) {
      carried[r.vip] = carriedBy(r.vip, new Set(before[r.vip].conns.map((c) => c.localPort)));
      for (const ns of LBS)
        assert.ok(
          carried[r.vip][ns].length > 0,
          `${r.mode}: ${ns} carries none of the ${CONNS} connections: ${JSON.stringify(carried[r.vip])}`,
        );
      t.diagnostic(
        `${r.mode}: before the kill lb1 carries ${carried[r.vip]['weir-lb1'].length}, lb2 carries ${carried[r.vip]['weir-lb2'].length} connections`,
      );
    }
    const victim = 'weir-lb2';
    const pid = labStatus().weir.find((w) => w.ns === victim)!.pid!;
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    // Within the hold time at the latest; in practice at once, because the dead process's TCP session closes.
    const withdrawn = await timed(
      until(
        () => `the nexthop of ${victim} is gone (now: ${JSON.stringify(nexthops())})`,
        () => routedVia(['weir-lb1']),
        { timeoutMs: HOLD_TIME * 1000, everyMs: 5 },
      ),
    );
    t.diagnostic(
      `kill -9 ${victim} → its nexthop gone from every VIP route in the router's kernel: ${withdrawn} ms (hold time 3 s)`,
    );
    await sleep(3000); // traffic keeps going on the survivor
    const tKill = t0;
    for (const r of runs) {
      const after = await r.ka.stop();
      const moved = new Set(carried[r.vip][victim]);
      const rows = after.conns.map((c) => {
        const first = before[r.vip].conns.find((b) => b.localPort === c.localPort)!.backends[0];
        return {
          port: c.localPort,
          moved: moved.has(c.localPort),
          first,
          sameBackend: c.backends.every((b) => b === first),
          answeredAfter: c.last > tKill + 2000,
          errors: c.errors,
        };
      });
      const failed = rows.filter((x) => x.errors.length > 0 || !x.sameBackend || !x.answeredAfter);
      const movedOk = rows.filter((x) => x.moved && failed.every((f) => f.port !== x.port)).length;
      t.diagnostic(
        `${r.mode}: ${CONNS - failed.length}/${CONNS} connections survived the kill (${movedOk}/${moved.size} of those ${victim} carried moved to weir-lb1 and kept their backend); resets/errors: ${failed.filter((x) => x.errors.length > 0).length}`,
      );
      assert.deepEqual(failed, [], `${r.mode}: connections that broke or changed backend`);
      // The survivor now carries the moved flows (it learned them from mid-flow packets via Maglev).
      const now = carriedBy(r.vip, new Set(after.conns.map((c) => c.localPort)), ['weir-lb1'])['weir-lb1'];
      for (const p of moved) assert.ok(now.includes(p), `${r.mode}: weir-lb1 has no entry for moved port ${p}`);
    }
  });

  test("nat mode: when an instance dies, the connections it carried break (their SNAT address was its own); the other instance's connections live on", async (t) => {
    if (!labStatus().weir.find((w) => w.ns === 'weir-lb2')!.alive) restartWeir('weir-lb2');
    await until(
      () => `weir-lb2 is back in the routes (now: ${JSON.stringify(nexthops())})`,
      () => routedVia(LBS),
      { timeoutMs: 20_000, everyMs: 20 },
    );
    const ka = new KeepAlive('198.18.100.1', 31200);
    clients.push(ka);
    const before = await ka.warm();
    assert.deepEqual(
      before.conns.filter((c) => c.answers < 2 || c.errors.length > 0),
      [],
      'nat connections not working before the kill',
    );
    const carried = carriedBy('198.18.100.1', new Set(before.conns.map((c) => c.localPort)));
    for (const ns of LBS)
      assert.ok(carried[ns].length > 0, `${ns} carries none of the nat connections: ${JSON.stringify(carried)}`);
    const t0 = Date.now();
    process.kill(labStatus().weir.find((w) => w.ns === 'weir-lb2')!.pid!, 'SIGKILL');
    await until(
      () => `the nexthop of weir-lb2 is gone (now: ${JSON.stringify(nexthops())})`,
      () => routedVia(['weir-lb1']),
      { timeoutMs: 10_000, everyMs: 5 },
    );
    await sleep(3000);
    const after = await ka.stop();
    const lost = new Set(carried['weir-lb2']);
    const works = (c: ConnReport) => c.errors.length === 0 && c.last > t0 + 2000;
    const kept = after.conns.filter((c) => !lost.has(c.localPort));
    const moved = after.conns.filter((c) => lost.has(c.localPort));
    const reset = moved.filter((c) => c.errors.length > 0).length;
    const stalled = moved.filter((c) => c.errors.length === 0 && !works(c)).length;
    t.diagnostic(
      `nat: weir-lb1's ${kept.length} connections: ${kept.filter(works).length} kept working; weir-lb2's ${moved.length}: ${moved.filter(works).length} kept working, ${reset} reset, ${stalled} stalled`,
    );
    assert.deepEqual(
      kept.filter((c) => !works(c)),
      [],
      'connections the surviving instance carried',
    );
  });

  test('SIGTERM of an instance removes its nexthop from every VIP route within a second after its shutdown wait', async (t) => {
    // Bring the killed instance back first; the router takes it into the ECMP routes again.
    if (!labStatus().weir.find((w) => w.ns === 'weir-lb2')!.alive) restartWeir('weir-lb2');
    const back = await timed(
      until(
        () => `weir-lb2 is back in the routes (now: ${JSON.stringify(nexthops())})`,
        () => routedVia(LBS),
        { timeoutMs: 20_000, everyMs: 20 },
      ),
    );
    t.diagnostic(`weir-lb2 restarted → back in every VIP route: ${back} ms`);
    const pid = labStatus().weir.find((w) => w.ns === 'weir-lb1')!.pid!;
    process.kill(pid, 'SIGTERM');
    const gone = await timed(
      until(
        () => `weir-lb1 is no longer a nexthop (now: ${JSON.stringify(nexthops())})`,
        () => routedVia(['weir-lb2']),
        { timeoutMs: SHUTDOWN_WAIT_MS + 1000, everyMs: 5 },
      ),
    );
    t.diagnostic(`SIGTERM weir-lb1 → its nexthop gone: ${gone} ms (shutdown_wait_ms ${SHUTDOWN_WAIT_MS})`);
    assert.ok(gone >= SHUTDOWN_WAIT_MS - 50, `routes withdrawn before the graceful-shutdown wait (${gone} ms)`);
    const exited = await timed(
      until(
        () => 'weir-lb1 exits after SIGTERM',
        () => !alive(pid),
        { timeoutMs: 5000, everyMs: 20 },
      ),
    );
    t.diagnostic(`weir-lb1 exited ${gone + exited} ms after SIGTERM`);
  });
});
