// The metrics of the real lab processes: promtool judges each weir daemon's and each `weir
// decap`'s /metrics; known traffic through every mode shows in the per-VIP and per-backend
// counters (new flows per backend as the backends themselves answered, UDP packets as the sender
// counted them, within 1%); one malformed packet appears under its drop reason; /healthz and
// /readyz answer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { inNs, labSkipReason } from '../helpers/net.js';
import { CLIENT, curlMany, labDown, labUp, LBS, urlOf, weir, WEIR } from './dataplane-lab.js';
import type { BackendView, VipView } from '../../src/control/api.js';
import { hostsByRole, VIPS } from '../../netns-lab/topology.js';

type Series = Map<string, number>;

function get(ns: string, port: number, path: string): { status: number; body: string } {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, 'curl', '-s', '--max-time', '5', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

function parse(text: string): Series {
  const m: Series = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

/** Both weir instances' series, summed (ECMP gives each flow to one of them). */
function scrape(): Series {
  const sum: Series = new Map();
  for (const ns of LBS) {
    const r = get(ns, 9473, '/metrics');
    assert.equal(r.status, 200, `${ns} /metrics`);
    for (const [k, v] of parse(r.body)) sum.set(k, (sum.get(k) ?? 0) + v);
  }
  return sum;
}

const delta = (a: Series, b: Series, key: string): number => (b.get(key) ?? 0) - (a.get(key) ?? 0);

function within1pct(got: number, want: number, what: string): void {
  assert.ok(want > 0, `${what}: nothing expected`);
  assert.ok(Math.abs(got - want) <= want * 0.01, `${what}: counted ${got}, sent ${want}`);
}

/** `n` datagrams from each of `ports` client ports to address:7; returns the replies received. */
function udpFlows(address: string, ports: number, n: number): number {
  const fam = address.includes(':') ? 'AF_INET6' : 'AF_INET';
  const py = `
import socket, time
socks = []
for i in range(${ports}):
    s = socket.socket(socket.${fam}, socket.SOCK_DGRAM); s.bind(('', 31000 + i)); s.setblocking(False); socks.append(s)
got = 0
for k in range(${n}):
    for s in socks:
        s.sendto(b'weir-metrics', ('${address}', 7))
    time.sleep(0.005)
end = time.time() + 2
while time.time() < end:
    for s in socks:
        try:
            while True: s.recv(2048); got += 1
        except BlockingIOError: pass
    time.sleep(0.05)
print(got)
`;
  return Number(inNs(CLIENT, 'timeout', ['20', '/usr/bin/python3', '-c', py]).trim());
}

describe('metrics of the lab processes', { skip: labSkipReason() }, () => {
  before(() => labUp());
  after(() => labDown());

  test('promtool check metrics accepts the real /metrics of every weir daemon and every weir decap', () => {
    const targets = [
      ...LBS.map((ns) => ({ ns, port: 9473 })),
      ...hostsByRole('backend').map((b) => ({ ns: b.ns, port: 9474 })),
    ];
    assert.ok(targets.length >= 4);
    for (const { ns, port } of targets) {
      const r = get(ns, port, '/metrics');
      assert.equal(r.status, 200, `${ns}:${port}`);
      assert.match(r.body, port === 9473 ? /^weir_vip_packets_total\{/m : /^weir_decap_received_packets_total\{/m);
      assert.match(r.body, /^nodejs_eventloop_lag_seconds /m);
      const p = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8', timeout: 30_000 });
      assert.equal(p.status, 0, `${ns}:${port}: ${p.stdout}${p.stderr}`);
      assert.equal((p.stdout + p.stderr).trim(), '', `${ns}:${port}`);
    }
  });

  test('/healthz and /readyz answer 200 on every weir daemon once it serves', () => {
    for (const ns of LBS) {
      assert.deepEqual(get(ns, 9473, '/healthz'), { status: 200, body: 'ok\n' });
      assert.deepEqual(get(ns, 9473, '/readyz'), { status: 200, body: 'ready\n' });
    }
  });

  for (const mode of ['nat', 'dsr-gre', 'dsr-l2'] as const) {
    const web = VIPS.find((v) => v.mode === mode && v.protocol === 'tcp' && v.port === 80 && !v.address.includes(':'))!;
    const echo = VIPS.find((v) => v.mode === mode && v.protocol === 'udp' && v.address.includes(':'))!;

    test(`${mode}: 200 HTTP requests are 200 new flows of ${web.name}, per backend as the backends answered`, () => {
      const a = scrape();
      const { lines, failures } = curlMany(urlOf(web.address), 200, 20);
      assert.equal(failures, 0);
      const b = scrape();
      within1pct(delta(a, b, `weir_vip_new_flows_total{vip="${web.name}"}`), 200, `${web.name} new flows`);
      const answered = new Map<string, number>();
      for (const l of lines) answered.set(l.split(' ')[0], (answered.get(l.split(' ')[0]) ?? 0) + 1);
      assert.ok(answered.size >= 2, `spread over ${answered.size} backends`);
      for (const [backend, n] of answered)
        within1pct(
          delta(a, b, `weir_backend_new_flows_total{vip="${web.name}",backend="${backend}"}`),
          n,
          `${web.name} backend ${backend} new flows`,
        );
      // Every forwarded client packet is a backend's "in" packet; the VIP adds the ones not forwarded.
      const vipIn = delta(a, b, `weir_vip_packets_total{vip="${web.name}",direction="in"}`);
      const backendsIn = [...answered.keys()].reduce(
        (s, be) => s + delta(a, b, `weir_backend_packets_total{vip="${web.name}",backend="${be}",direction="in"}`),
        0,
      );
      assert.ok(backendsIn >= 200 * 3, `at least SYN, ACK and request per connection: ${backendsIn}`);
      assert.equal(vipIn, backendsIn + delta(a, b, `weir_vip_dropped_packets_total{vip="${web.name}",direction="in"}`));
    });

    test(`${mode}: 300 UDP datagrams from 30 client ports are 300 packets in and 30 new flows of ${echo.name}`, () => {
      const a = scrape();
      const replies = udpFlows(echo.address, 30, 10);
      const b = scrape();
      within1pct(delta(a, b, `weir_vip_packets_total{vip="${echo.name}",direction="in"}`), 300, `${echo.name} in`);
      within1pct(delta(a, b, `weir_vip_new_flows_total{vip="${echo.name}"}`), 30, `${echo.name} new flows`);
      within1pct(delta(a, b, `weir_vip_bytes_total{vip="${echo.name}",direction="in"}`), 300 * (40 + 8 + 12), 'bytes');
      // nat replies come back through weir; DSR replies go straight to the client.
      const out = delta(a, b, `weir_vip_packets_total{vip="${echo.name}",direction="out"}`);
      if (mode === 'nat') within1pct(out, replies, `${echo.name} out (the client received ${replies})`);
      else assert.equal(out, 0);
    });
  }

  test('weir vips, weir backends and weir top show the traffic the metrics count', () => {
    const vips = LBS.flatMap((ns) => weir<VipView[]>(ns, ['vips']));
    const nat = vips.filter((v) => v.name === 'web-nat');
    assert.equal(nat.length, 2);
    assert.ok(nat.every((v) => v.traffic !== undefined));
    assert.ok(nat.reduce((s, v) => s + v.traffic!.newFlows, 0) >= 200, 'the HTTP flows of the nat test');
    const bes = LBS.flatMap((ns) => weir<BackendView[]>(ns, ['backends', 'web-nat']));
    assert.ok(bes.every((b) => b.traffic !== undefined && b.traffic.activeFlows >= 0));
    const sock = `/run/weir-lab/lb1.sock`;
    const top = inNs(LBS[0], process.execPath, [WEIR, 'top', '--iterations', '1', '-s', sock]);
    assert.match(top, /^weir top — \S+\s+conntrack \d+\/\d+ /m);
    assert.match(top, /^web-nat\s+nat\s+serving\s+3\/3\s/m);
  });

  test('one TCP segment with a data offset below 5 to a VIP is counted as a malformed drop', () => {
    const key = 'weir_dataplane_drops_total{reason="malformed"}';
    const a = scrape();
    const py =
      "from scapy.all import IP, TCP, send; send(IP(dst='198.18.100.1')/TCP(sport=33333, dport=80, dataofs=2, flags='S'), verbose=0)";
    inNs(CLIENT, 'timeout', ['20', '/usr/bin/python3', '-c', py]); // Debian's python3-scapy
    const b = scrape();
    assert.equal(delta(a, b, key), 1);
  });
});
