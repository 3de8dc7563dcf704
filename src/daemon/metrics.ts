// The daemon's Prometheus metrics: every series is read at scrape time (collect callbacks) from
// the runtime, the health monitor, the BGP sessions and the data plane's status().counters, so
// nothing has to be kept in step on the hot path.
import { Registry, type Sample } from '../metrics/registry.js';
import type { BgpSpeakerStatus } from '../control/api.js';
import { backendsView, snatView, vipsView } from './views.js';
import type { LbRuntime } from './runtime.js';

export interface MetricsSource {
  runtime: LbRuntime;
  instance: string;
  version: string;
  reloads(): { ok: number; failed: number };
  bgp(): BgpSpeakerStatus | null;
}

const BGP_STATES = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'] as const;

/** Prometheus metric-name characters only (data-plane counter names become label values, but stay tidy). */
function counterLabel(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_');
}

export function daemonRegistry(src: MetricsSource): Registry {
  const r = new Registry();
  const rt = src.runtime;
  const g = (name: string, help: string, labelNames: string[], collect: () => Iterable<Sample>) =>
    r.collect({ name, help, labelNames, type: 'gauge', collect });
  const c = (name: string, help: string, labelNames: string[], collect: () => Iterable<Sample>) =>
    r.collect({ name, help, labelNames, type: 'counter', collect });

  g('weir_build_info', 'weir version and instance name (always 1).', ['version', 'instance'], () => [
    { labels: { version: src.version, instance: src.instance }, value: 1 },
  ]);
  g(
    'weir_config_generation',
    'Generation of the published tables (+1 per config apply, drain or health change).',
    [],
    () => [{ value: rt.generation }],
  );
  c('weir_config_reloads_total', 'Config reloads by result.', ['result'], () => {
    const n = src.reloads();
    return [
      { labels: { result: 'success' }, value: n.ok },
      { labels: { result: 'failure' }, value: n.failed },
    ];
  });

  // Connection table.
  g('weir_conntrack_capacity', 'Connection-table capacity (entries).', [], () => [{ value: rt.conntrack.capacity }]);
  g('weir_conntrack_entries', 'Live connection entries by TCP/UDP state.', ['state'], () =>
    Object.entries(rt.conntrack.countByState()).map(([state, value]) => ({
      labels: { state: state.toLowerCase() },
      value,
    })),
  );
  c(
    'weir_conntrack_events_total',
    'Connection-table events (inserts, evictions, misses, …) since start.',
    ['event'],
    () =>
      Object.entries(rt.conntrack.stats())
        .filter(([k]) => k !== 'size' && k !== 'capacity')
        .map(([k, value]) => ({ labels: { event: counterLabel(k) }, value })),
  );

  // VIPs and backends.
  g(
    'weir_vip_info',
    'One series per VIP; the labels carry its Maglev table fingerprint, mode and service.',
    ['vip', 'fingerprint', 'mode', 'address', 'port', 'protocol'],
    () =>
      vipsView(rt).map((v) => ({
        labels: {
          vip: v.name,
          fingerprint: v.fingerprint,
          mode: v.mode,
          address: v.address,
          port: String(v.port),
          protocol: v.protocol,
        },
        value: 1,
      })),
  );
  g('weir_vip_healthy', '1 while the VIP has at least min_healthy_backends serving backends.', ['vip'], () =>
    vipsView(rt).map((v) => ({ labels: { vip: v.name }, value: v.healthy ? 1 : 0 })),
  );
  g(
    'weir_vip_backends',
    'Backends per VIP: configured, healthy (probes pass) and serving (healthy, weight > 0, not drained).',
    ['vip', 'state'],
    () => {
      const out: Sample[] = [];
      const rows = backendsView(rt);
      for (const v of vipsView(rt)) {
        const mine = rows.filter((b) => b.vip === v.name);
        const healthy = mine.filter(
          (b) => b.health === 'up' || b.health === 'suspect' || b.health === 'unchecked',
        ).length;
        out.push({ labels: { vip: v.name, state: 'configured' }, value: mine.length });
        out.push({ labels: { vip: v.name, state: 'healthy' }, value: healthy });
        out.push({ labels: { vip: v.name, state: 'serving' }, value: v.activeBackends });
      }
      return out;
    },
  );
  g('weir_backend_serving', '1 while the backend takes new flows.', ['vip', 'backend'], () =>
    backendsView(rt).map((b) => ({
      labels: { vip: b.vip, backend: b.name },
      value: b.serving && !b.drained && b.weight > 0 ? 1 : 0,
    })),
  );

  // SNAT ports (nat VIPs): what each backend's flows hold against the cap.
  g('weir_snat_ports_in_use', "SNAT ports held by a nat backend's flows (one per live flow).", ['vip', 'backend'], () =>
    snatView(rt).backends.map((b) => ({ labels: { vip: b.vip, backend: b.backend }, value: b.inUse })),
  );
  g(
    'weir_snat_ports_capacity',
    'SNAT ports a nat backend can hold: SNAT addresses of its family × ports in instance.snat_ports (shared by flows to the same backend address, port and protocol).',
    ['vip', 'backend'],
    () => snatView(rt).backends.map((b) => ({ labels: { vip: b.vip, backend: b.backend }, value: b.capacity })),
  );

  // Health checks.
  const counters = () => rt.health?.counters() ?? [];
  c('weir_health_probes_total', 'Active health probes by result.', ['vip', 'backend', 'result'], () =>
    counters().flatMap((k) =>
      (['ok', 'fail', 'timeout', 'error'] as const).map((result) => ({
        labels: { vip: k.vip, backend: k.backend, result },
        value: k[result],
      })),
    ),
  );
  c(
    'weir_health_passive_reports_total',
    'Data-path connection outcomes reported to the health monitor.',
    ['vip', 'backend', 'result'],
    () =>
      counters().flatMap((k) => [
        { labels: { vip: k.vip, backend: k.backend, result: 'failure' }, value: k.passiveFailures },
        { labels: { vip: k.vip, backend: k.backend, result: 'success' }, value: k.passiveSuccesses },
      ]),
  );
  c('weir_health_transitions_total', 'Backend health state changes.', ['vip', 'backend'], () =>
    counters().map((k) => ({ labels: { vip: k.vip, backend: k.backend }, value: k.transitions })),
  );
  c('weir_health_table_rebuilds_total', 'Maglev table rebuilds caused by a backend health change.', [], () => [
    { value: rt.healthTables?.rebuildCount ?? 0 },
  ]);

  // BGP.
  g('weir_bgp_session_state', 'BGP session state (1 for the current state of each peer).', ['peer', 'state'], () =>
    (src.bgp()?.peers ?? []).flatMap((p) =>
      BGP_STATES.map((state) => ({ labels: { peer: p.peer, state }, value: p.state === state ? 1 : 0 })),
    ),
  );
  g('weir_bgp_session_established_count', 'Times each BGP session reached Established since start.', ['peer'], () =>
    (src.bgp()?.peers ?? []).map((p) => ({ labels: { peer: p.peer }, value: p.established })),
  );
  g('weir_bgp_routes_announced', 'VIP prefixes announced to each peer now (0 unless Established).', ['peer'], () =>
    (src.bgp()?.peers ?? []).map((p) => ({ labels: { peer: p.peer }, value: p.routes })),
  );
  g('weir_bgp_self_healthy', '1 while weir considers itself able to serve (a condition for announcing).', [], () => {
    const b = src.bgp();
    return b ? [{ value: b.selfHealthy ? 1 : 0 }] : [];
  });
  // Issue 19: messages, connects, BFD and TCP-MD5.
  c(
    'weir_bgp_messages_total',
    'BGP messages per peer, direction (in|out) and type.',
    ['peer', 'direction', 'type'],
    () =>
      (src.bgp()?.peers ?? []).flatMap((p) =>
        (['in', 'out'] as const).flatMap((direction) =>
          Object.entries(p.messages[direction]).map(([type, value]) => ({
            labels: { peer: p.peer, direction, type },
            value,
          })),
        ),
      ),
  );
  c(
    'weir_bgp_connect_timeouts_total',
    'Connect attempts to each peer that got no answer (with TCP-MD5, also a password mismatch).',
    ['peer'],
    () => (src.bgp()?.peers ?? []).map((p) => ({ labels: { peer: p.peer }, value: p.connect.timeouts })),
  );
  g('weir_bfd_session_up', '1 while the BFD session to the peer is Up (peers with BFD only).', ['peer'], () =>
    (src.bgp()?.peers ?? []).flatMap((p) =>
      p.bfd ? [{ labels: { peer: p.peer }, value: p.bfd.state === 'Up' ? 1 : 0 }] : [],
    ),
  );
  c(
    'weir_bfd_packets_dropped_total',
    'BFD packets discarded by reason (RFC 5880 §6.8.6, RFC 5881 §5 TTL, demultiplexing).',
    ['reason'],
    () => Object.entries(src.bgp()?.bfd?.drops ?? {}).map(([reason, value]) => ({ labels: { reason }, value })),
  );
  c(
    'weir_tcp_md5_drops_total',
    'Segments the kernel dropped for TCP-MD5 (this namespace): failure = bad signature, not_found = unsigned from a keyed peer, unexpected = signed without a key.',
    ['reason'],
    () => {
      const k = src.bgp()?.tcpMd5Kernel;
      return k
        ? [
            { labels: { reason: 'failure' }, value: k.failure },
            { labels: { reason: 'not_found' }, value: k.notFound },
            { labels: { reason: 'unexpected' }, value: k.unexpected },
          ]
        : [];
    },
  );

  // Data plane: whatever DataPlaneHooks.status().counters reports, one series per counter.
  g('weir_dataplane_attached', '1 while a data plane is attached.', [], () => [
    { value: rt.hooks.status().attached ? 1 : 0 },
  ]);
  r.collect({
    name: 'weir_dataplane_stats',
    help: 'Data-plane counters as reported by the data plane (DataPlaneHooks.status().counters).',
    labelNames: ['name'],
    type: 'untyped',
    collect: () => {
      const seen = new Map<string, number>();
      for (const [k, v] of Object.entries(rt.hooks.status().counters ?? {}))
        if (typeof v === 'number' && !seen.has(counterLabel(k))) seen.set(counterLabel(k), v);
      return [...seen].map(([name, value]) => ({ labels: { name }, value }));
    },
  });
  return r;
}
