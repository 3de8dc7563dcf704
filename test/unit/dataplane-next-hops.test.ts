// Next-hop output: which route and neighbour a backend's packets go to, from `ip -j` output
// as iproute2 prints it (captured from this machine's kernel, 6.18).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  monitorVerdict,
  nextHopOf,
  parseNeighbours,
  parseRoutes,
  routeOf,
  watchHost,
  type HostView,
} from '../../src/dataplane/next-hops.js';
import { until } from '../helpers/wait.js';
import type { Link } from '../../src/dataplane/links.js';
import { parseCidr } from '../../src/packet/index.js';

const ROUTES4 =
  '[{"dst":"default","gateway":"198.18.1.1","dev":"fab0","flags":[]},{"dst":"198.18.1.0/24","dev":"fab0","protocol":"kernel","scope":"link","prefsrc":"198.18.1.11","flags":[]},' +
  '{"dst":"198.18.2.0/24","dev":"be0","protocol":"kernel","scope":"link","prefsrc":"198.18.2.11","flags":[]},' +
  '{"dst":"198.18.40.0/24","nexthops":[{"gateway":"198.18.2.5","dev":"be0","weight":1,"flags":[]},{"gateway":"198.18.2.6","dev":"be0","weight":1,"flags":[]}],"flags":[]},' +
  '{"type":"blackhole","dst":"198.18.50.0/24","flags":[]},{"dst":"198.18.60.0/24","dev":"weir-tun9","scope":"link","flags":[]}]';
const ROUTES6 =
  '[{"dst":"fd00:0:0:2::/64","dev":"be0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"default","gateway":"fd00:0:0:1::1","dev":"fab0","metric":1024,"flags":[],"pref":"medium"}]';
const NEIGH4 =
  '[{"dst":"198.18.2.21","dev":"be0","lladdr":"02:00:00:00:02:21","state":["REACHABLE"]},{"dst":"198.18.1.1","dev":"fab0","lladdr":"02:00:00:00:01:01","state":["STALE"]},' +
  '{"dst":"198.18.2.22","dev":"be0","state":["INCOMPLETE"]},{"dst":"198.18.2.23","dev":"be0","lladdr":"02:00:00:00:02:23","state":["FAILED"]}]';
const NEIGH6 = '[{"dst":"fd00:0:0:2::21","dev":"be0","lladdr":"02:00:00:00:02:21","router":null,"state":["DELAY"]}]';

const links: Link[] = [
  { name: 'fab0', ifindex: 2, mac: '02:00:00:00:0f:00', prefixes: [parseCidr('198.18.1.11/24')!] },
  { name: 'be0', ifindex: 3, mac: '02:00:00:00:0b:00', prefixes: [parseCidr('198.18.2.11/24')!] },
];
const view: HostView = {
  routes: [...parseRoutes(ROUTES4, 4), ...parseRoutes(ROUTES6, 6)],
  neighbours: parseNeighbours(NEIGH6, parseNeighbours(NEIGH4)),
};

test('routes: multipath, blackhole and foreign-family entries are left out; the longest prefix wins, the default route last', () => {
  assert.equal(view.routes.length, 6, 'default + 2 connected + tun route (v4), connected + default (v6)');
  assert.equal(routeOf(view.routes, '198.18.2.21')?.dev, 'be0');
  assert.equal(routeOf(view.routes, '203.0.113.7')?.gateway, '198.18.1.1');
  assert.equal(
    routeOf(view.routes, '198.18.40.9')?.gateway,
    '198.18.1.1',
    'the multipath route is not used: the default catches it',
  );
  assert.equal(routeOf(view.routes, 'fd00:0:0:2::21')?.dev, 'be0');
  assert.equal(routeOf(view.routes, 'fd00:0:0:9::1')?.gateway, 'fd00:0:0:1::1');
  assert.equal(routeOf(view.routes, 'nonsense'), undefined);
});

test("a backend on-link goes to its own MAC, a routed one to its gateway's; unresolved or failed neighbours and interfaces weir does not own stay with the kernel", () => {
  assert.deepEqual(nextHopOf(view, links, '198.18.2.21'), {
    ifindex: 3,
    mac: '02:00:00:00:0b:00',
    nextHop: '02:00:00:00:02:21',
  });
  assert.deepEqual(
    nextHopOf(view, links, '203.0.113.7'),
    { ifindex: 2, mac: '02:00:00:00:0f:00', nextHop: '02:00:00:00:01:01' },
    'STALE is usable',
  );
  assert.deepEqual(nextHopOf(view, links, 'fd00:0:0:2::21'), {
    ifindex: 3,
    mac: '02:00:00:00:0b:00',
    nextHop: '02:00:00:00:02:21',
  });
  assert.equal(nextHopOf(view, links, '198.18.2.22'), undefined, 'INCOMPLETE');
  assert.equal(nextHopOf(view, links, '198.18.2.23'), undefined, 'FAILED');
  assert.equal(
    nextHopOf(view, links, '198.18.60.1'),
    undefined,
    'a route through an interface weir does not attach to',
  );
  assert.equal(nextHopOf(view, links, 'fd00:0:0:9::1'), undefined, 'gateway not in the neighbour table yet');
  assert.equal(nextHopOf({ routes: [], neighbours: new Map() }, links, '198.18.2.21'), undefined, 'no route');
});

test('empty or missing output parses as nothing; bad JSON throws', () => {
  assert.deepEqual(parseRoutes('', 4), []);
  assert.equal(parseNeighbours('[]').size, 0);
  assert.throws(() => parseRoutes('{not json', 4));
});

// `ip -o monitor label route neigh` lines as iproute2 6.1 printed them here.
test('monitor lines: state churn of a known neighbour changes nothing; a new MAC, a failure, a delete or a main-table route does', () => {
  const same = [
    '[NEIGH]198.18.2.21 dev be0 lladdr 02:00:00:00:02:21 STALE ',
    '[NEIGH]198.18.2.21 dev be0 lladdr 02:00:00:00:02:21 DELAY ',
    '[NEIGH]fd00:0:0:2::21 dev be0 lladdr 02:00:00:00:02:21 router REACHABLE ',
    '[NEIGH]198.18.2.22 dev be0  INCOMPLETE ',
    '[NEIGH]Deleted 198.18.2.99 dev be0 lladdr 02:00:00:00:02:99 STALE ',
    '[ROUTE]local fe80::e487:b0ff:fe1c:fada dev be0 table local proto kernel metric 0 pref medium',
    '',
  ];
  const reread = [
    '[NEIGH]198.18.2.21 dev be0 lladdr 02:00:00:00:02:77 REACHABLE ',
    '[NEIGH]198.18.2.21 dev be0  FAILED ',
    '[NEIGH]Deleted 198.18.2.21 dev be0 lladdr 02:00:00:00:02:21 STALE ',
    '[NEIGH]198.18.2.22 dev be0 lladdr 02:00:00:00:02:22 REACHABLE ',
    '[ROUTE]198.18.100.0/24 via 198.18.2.21 dev be0 ',
    '[ROUTE]Deleted default via 198.18.1.1 dev fab0 ',
    'something iproute2 may print one day',
  ];
  for (const l of same) assert.equal(monitorVerdict(l, view), 'same', l);
  for (const l of reread) assert.equal(monitorVerdict(l, view), 'reread', l);
  assert.equal(monitorVerdict(same[0], null), 'reread', 'no view yet: read it');
});

test('watchHost re-reads once after it starts and on a line that changes a next hop, not on churn; a monitor that exits is said and restarted; stop ends it', async () => {
  const lines = [
    '[NEIGH]198.18.2.21 dev be0 lladdr 02:00:00:00:02:21 STALE',
    '[NEIGH]198.18.2.21 dev be0 lladdr 02:00:00:00:02:21 REACHABLE',
    '[ROUTE]198.18.100.0/24 via 198.18.2.21 dev be0',
  ];
  // The stand-in monitor prints two churn lines at once, the route a second later, then exits.
  const script = `printf '%s\\n%s\\n' '${lines[0]}' '${lines[1]}'; sleep 1; printf '%s\\n' '${lines[2]}'; sleep 0.3`;
  let reads = 0;
  const errors: string[] = [];
  const stop = watchHost({
    reread: () => {
      reads++;
      return Promise.resolve();
    },
    view: () => view,
    onError: (m) => errors.push(m),
    settleMs: 20,
    resyncMs: 3_600_000,
    argv: ['sh', '-c', script],
  });
  try {
    await until('the read after start', () => reads >= 1, { timeoutMs: 3000 });
    await until('the read after the route line', () => reads >= 2, { timeoutMs: 5000 });
    await until('the exit said', () => errors.length >= 1, { timeoutMs: 5000 });
    assert.equal(reads, 2, 'churn lines asked for no read');
    assert.match(errors[0], /exited \(0\); restarting it/);
  } finally {
    stop();
  }
});
