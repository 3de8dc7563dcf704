// The lab bench's pure parts, without root: weir's refusal words, medians and spread, ratios
// to each peer, the markdown tables and the ratio chart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configProblems, peerVariant, weirConfig, weirVariant, weirWords } from '../../scripts/bench/lab/variants.js';
import { settings, variantsOf } from '../../scripts/bench/lab.js';
import { parseConfigText } from '../../src/config/load.js';
import { COLUMNS, METRICS, Recorder, median, ratios } from '../../scripts/bench/lab/results.js';
import { figuresTable, ratiosTable } from '../../scripts/bench/lab/report.js';
import { ratioChart } from '../../scripts/bench/lab/svg.js';

test('a config error names the first problem without the scratch path, and counts the rest', () => {
  const text =
    '/tmp/weir-bn-x/weir-dsr-l2-tun-w1.yaml: 3 problems vips[0].mode: dsr-l2 needs instance.io afpacket (line 28, col 11) ' +
    'vips[1].mode: dsr-l2 needs instance.io afpacket (line 42, col 11) vips[2].mode: dsr-l2 needs instance.io afpacket (line 56, col 11)';
  assert.equal(configProblems(text), 'vips[0].mode: dsr-l2 needs instance.io afpacket (+2 more)');
  assert.equal(
    configProblems('/tmp/a/b.yaml: 1 problem instance.io: must be one of afpacket, tun, got "x" (line 9, col 7)'),
    'instance.io: must be one of afpacket, tun, got "x"',
  );
});

test("a start failure is weir's stderr line, else the last error of its JSON log", () => {
  assert.equal(
    weirWords('{"level":30,"msg":"x"}\nweir: cannot start: data-plane worker 0: EINVAL\n'),
    'cannot start: data-plane worker 0: EINVAL',
  );
  assert.equal(
    weirWords('{"level":30,"msg":"up"}\n{"level":50,"msg":"worker failed","err":"EINVAL"}\n'),
    'worker failed: EINVAL',
  );
  assert.equal(weirWords('{"level":50,"msg":"worker failed","err":{"message":"EPERM"}}'), 'worker failed: EPERM');
  assert.equal(weirWords(''), '(no message)');
});

test('medians of odd and even sample counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('rows carry every column, medians with spread, refusals with their reason, and weir ÷ each peer', () => {
  const vs = [
    peerVariant('kernel'),
    peerVariant('haproxy'),
    weirVariant('nat', 'afpacket', '1'),
    weirVariant('nat', 'afxdp', '1'),
  ];
  const rec = new Recorder();
  for (const [k, xs] of [
    ['udp_kpps', [300, 320, 310]],
    ['conn_per_s', [10_000, 12_000, 11_000]],
    ['connect_p50_low_us', [100, 120, 110]],
  ] as const) {
    for (const x of xs) rec.add('kernel', k, x);
  }
  rec.add('haproxy', 'conn_per_s', 8000);
  for (const x of [150, 160, 170]) rec.add('weir-nat-afpacket-w1', 'udp_kpps', x);
  rec.add('weir-nat-afpacket-w1', 'conn_per_s', 5500);
  rec.add('weir-nat-afpacket-w1', 'connect_p50_low_us', 220);
  rec.add('weir-nat-afpacket-w1', 'rss_mib', 120);
  rec.add('weir-nat-afpacket-w1', 'rss_mib', 140);
  rec.add('weir-nat-afpacket-w1', 'flood_offered_kpps', 350);
  rec.counters('weir-nat-afpacket-w1', 'flood', { ringDrops: 1500, rx: 9, dropGso: 0 });
  rec.refuse('weir-nat-afxdp-w1', 'config error: instance.io: must be one of afpacket, tun');
  const rows = rec.summarize(vs);
  for (const r of rows) assert.deepEqual(Object.keys(r.values).sort(), [...COLUMNS].sort());
  const w = rows[2];
  assert.equal(w.values.udp_kpps, 160);
  assert.deepEqual(w.spread.udp_kpps, { median: 160, min: 150, max: 170, n: 3 });
  assert.equal(w.values.rss_mib, 140, 'memory: the largest seen');
  assert.equal(w.side.flood_offered_kpps, 350);
  assert.deepEqual(w.counters.flood, { ringDrops: 1500, rx: 9 }, 'counters that did not move are left out');
  assert.equal(rows[3].status, 'refused');
  assert.equal(rows[1].values.udp_kpps, null);

  const r = ratios(rows);
  assert.deepEqual(Object.keys(r), ['weir-nat-afpacket-w1'], 'only weir rows that ran');
  assert.equal(r['weir-nat-afpacket-w1'].udp_kpps.kernel, 160 / 310);
  assert.equal(r['weir-nat-afpacket-w1'].conn_per_s.haproxy, 5500 / 8000);
  assert.equal(r['weir-nat-afpacket-w1'].udp_kpps.haproxy, null, 'no ratio where the peer has no figure');
  assert.equal(r['weir-nat-afpacket-w1'].connect_p50_low_us.kernel, 2);

  const table = figuresTable(rows);
  const head = table.split('\n')[0];
  for (const m of METRICS) assert.ok(head.includes(`| ${m.title} |`), m.title);
  assert.match(table, /\| weir nat afpacket 1 worker \| 160 ±6\.3% \| 5,500 \|/);
  assert.match(table, /flood: ringDrops 1\.5k/);
  assert.match(table, /\*\*config error: instance\.io: must be one of afpacket, tun\*\*/);
  assert.match(ratiosTable(rows, r), /\| weir nat afpacket 1 worker \| 0\.52 \/ — \| 0\.50 \/ 0\.69 \|/);

  const svg = ratioChart(rows, r, 'test');
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal(
    (svg.match(/<rect [^>]*><title>/g) ?? []).length,
    4,
    'a bar per ratio that exists (udp ÷ kernel, conn/s ÷ both, p50 ÷ kernel)',
  );
  assert.ok(svg.trimEnd().endsWith('</svg>'));
});

test('WEIR_BENCH_SPIN and WEIR_BENCH_SYN_PROXY multiply the weir variants, and each config is valid for weir', () => {
  const s = settings({
    WEIR_BENCH_IO: 'afpacket',
    WEIR_BENCH_MODES: 'nat',
    WEIR_BENCH_WORKERS: '1',
    WEIR_BENCH_PEERS: 'nftables',
    WEIR_BENCH_SPIN: '0,50',
    WEIR_BENCH_SYN_PROXY: 'auto,off',
  });
  const vs = variantsOf(s).filter((v) => v.kind === 'weir');
  assert.deepEqual(
    vs.map((v) => v.id),
    [
      'weir-nat-afpacket-w1-spin0-synproxy-auto',
      'weir-nat-afpacket-w1-spin0-synproxy-off',
      'weir-nat-afpacket-w1-spin50-synproxy-auto',
      'weir-nat-afpacket-w1-spin50-synproxy-off',
    ],
  );
  const ctx = { dir: '/tmp/weir-bn-unit', srvMac: '02:00:00:00:00:01' };
  for (const v of vs) {
    const text = weirConfig(v, ctx, '/tmp/weir-bn-unit/ctl.sock', '198.18.20.9');
    const r = parseConfigText(text);
    assert.ok(r.ok, `${v.id}: ${JSON.stringify(r.ok ? null : r.issues)}`);
    assert.equal(r.config.instance.busy_poll_us, v.spinUs);
    for (const vip of r.config.vips.filter((x) => x.protocol === 'tcp')) assert.equal(vip.syn_proxy, v.synProxy);
  }
  // Without the knobs: one variant per mode/io/workers, on weir's defaults.
  const plain = variantsOf(settings({ WEIR_BENCH_IO: 'afpacket', WEIR_BENCH_MODES: 'nat', WEIR_BENCH_WORKERS: '1' }));
  assert.deepEqual(
    plain.filter((v) => v.kind === 'weir').map((v) => v.id),
    ['weir-nat-afpacket-w1'],
  );
  assert.throws(() => settings({ WEIR_BENCH_SPIN: '5000' }), /WEIR_BENCH_SPIN/);
  assert.throws(() => settings({ WEIR_BENCH_SYN_PROXY: 'maybe' }), /WEIR_BENCH_SYN_PROXY/);
});
