// The daemon's Prometheus metrics: every series is read at scrape time (collect callbacks) from
// the runtime, the health monitor, the BGP sessions and the data plane's counters in shared
// memory, so nothing has to be kept in step on the hot path. Probe latency and table publish
// time are histograms fed as they happen. The names and labels are the README's metrics table.
import {
  Histogram,
  collectedCounter,
  collectedGauge,
  registryWithRuntime,
  type Registry,
  type Sample,
} from '../metrics/registry.js';
import type { BgpSpeakerStatus } from '../control/api.js';
import type { VipTraffic } from '../dataplane/contract.js';
import { backendsView, snatView, vipsView } from './views.js';
import type { LbRuntime } from './runtime.js';

export interface ReloadCounts {
  ok: number;
  failed: number;
  /** Epoch ms of the last successful config load (start or reload). */
  lastOkAt: number;
  /** Whether the last attempt succeeded (true before any). */
  lastOk: boolean;
}

export interface MetricsSource {
  runtime: LbRuntime;
  instance: string;
  version: string;
  reloads(): ReloadCounts;
  bgp(): BgpSpeakerStatus | null;
}

const BGP_STATES = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'] as const;

/** Prometheus metric-name characters only (data-plane counter names become label values, but stay tidy). */
function counterLabel(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_');
}

/** camelCase data-plane counter names → snake_case label values ("NoVip" → "no_vip"). */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
}

/** Data-plane counters by kind, from DataPlaneStatus.counters (engine and worker counter names). */
export function classifyCounters(counters: Record<string, number>): {
  drops: Sample[];
  sent: Sample[];
  passed: Sample[];
  events: Sample[];
} {
  const out = { drops: [] as Sample[], sent: [] as Sample[], passed: [] as Sample[], events: [] as Sample[] };
  // Reported elsewhere (received, new flows, batches, ring drops) or gauges and timestamps.
  const own = new Set(['rx', 'newFlows', 'batches', 'ringDrops', 'generation', 'appliedAt', 'firstPacketAt']);
  for (const [k, value] of Object.entries(counters)) {
    if (own.has(k) || typeof value !== 'number') continue;
    const m = /^(drop|tx|pass)([A-Z].*)$/.exec(k);
    if (k === 'txErrors' || k === 'txUnsent') out.drops.push({ labels: { reason: snakeCase(k) }, value });
    else if (m?.[1] === 'drop') out.drops.push({ labels: { reason: snakeCase(m[2]) }, value });
    else if (m?.[1] === 'tx') out.sent.push({ labels: { kind: snakeCase(m[2]) }, value });
    else if (m?.[1] === 'pass') out.passed.push({ labels: { reason: snakeCase(m[2]) }, value });
    else out.events.push({ labels: { event: snakeCase(k) }, value });
  }
  return out;
}

export function daemonRegistry(src: MetricsSource): Registry {
  const r = registryWithRuntime();
  const rt = src.runtime;
  const g = (name: string, help: string, labelNames: string[], collect: () => Iterable<Sample>) =>
    collectedGauge(r, { name, help, labelNames, collect });
  const c = (name: string, help: string, labelNames: string[], collect: () => Iterable<Sample>) =>
    collectedCounter(r, { name, help, labelNames, collect });

  // Not "instance": Prometheus sets that label to the scrape target and renames a clashing one.
  g(
    'weir_build_info',
    'weir version, Node.js version and the instance name from the config (always 1).',
    ['version', 'nodejs', 'weir_instance'],
    () => [{ labels: { version: src.version, nodejs: process.versions.node, weir_instance: src.instance }, value: 1 }],
  );
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
  g(
    'weir_config_last_reload_successful',
    '1 if the last config reload succeeded (or none was tried), else 0.',
    [],
    () => [{ value: src.reloads().lastOk ? 1 : 0 }],
  );
  g(
    'weir_config_last_reload_success_timestamp_seconds',
    'When the config was last loaded successfully (start or reload), Unix time.',
    [],
    () => [{ value: src.reloads().lastOkAt / 1000 }],
  );

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
      vipsView(rt, false).map((v) => ({
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
    vipsView(rt, false).map((v) => ({ labels: { vip: v.name }, value: v.healthy ? 1 : 0 })),
  );
  g(
    'weir_vip_backends',
    'Backends per VIP: configured, healthy (probes pass) and serving (healthy, weight > 0, not drained).',
    ['vip', 'state'],
    () => {
      const out: Sample[] = [];
      const rows = backendsView(rt, undefined, false);
      for (const v of vipsView(rt, false)) {
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
    backendsView(rt, undefined, false).map((b) => ({
      labels: { vip: b.vip, backend: b.name },
      value: b.serving && !b.drained && b.weight > 0 ? 1 : 0,
    })),
  );

  g(
    'weir_backend_healthy',
    '1 while the backend passes its health checks (up or suspect, or not checked), whether or not it is drained.',
    ['vip', 'backend'],
    () =>
      backendsView(rt, undefined, false).map((b) => ({
        labels: { vip: b.vip, backend: b.name },
        value: b.health === 'up' || b.health === 'suspect' || b.health === 'unchecked' ? 1 : 0,
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
  const probeCounts = () => rt.health?.counters() ?? [];
  c('weir_health_probes_total', 'Active health probes by result.', ['vip', 'backend', 'result'], () =>
    probeCounts().flatMap((k) =>
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
      probeCounts().flatMap((k) => [
        { labels: { vip: k.vip, backend: k.backend, result: 'failure' }, value: k.passiveFailures },
        { labels: { vip: k.vip, backend: k.backend, result: 'success' }, value: k.passiveSuccesses },
      ]),
  );
  c('weir_health_transitions_total', 'Backend health state changes.', ['vip', 'backend'], () =>
    probeCounts().map((k) => ({ labels: { vip: k.vip, backend: k.backend }, value: k.transitions })),
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
  c(
    'weir_bgp_session_established_transitions_total',
    'Times each BGP session reached Established since start.',
    ['peer'],
    () => (src.bgp()?.peers ?? []).map((p) => ({ labels: { peer: p.peer }, value: p.established })),
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
          Object.entries(p.messages[direction] as unknown as Record<string, number>).map(([type, value]) => ({
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

  // Data plane (shared memory, summed over the workers at scrape time).
  const status = () => rt.hooks.status();
  g('weir_dataplane_attached', '1 while a data plane is attached.', [], () => [{ value: status().attached ? 1 : 0 }]);
  g('weir_dataplane_workers', 'Data-plane worker threads: configured and running.', ['state'], () => {
    const s = status();
    return s.workers === undefined
      ? []
      : [
          { labels: { state: 'configured' }, value: s.workers },
          { labels: { state: 'running' }, value: s.running ?? 0 },
        ];
  });
  g('weir_dataplane_table_generation', 'The table generation each worker forwards with.', ['worker'], () =>
    (status().generations ?? []).map((value, w) => ({ labels: { worker: String(w) }, value })),
  );
  c(
    'weir_dataplane_worker_received_packets_total',
    'Packets each worker received (how flows spread).',
    ['worker'],
    () => (status().workerRx ?? []).map((value, w) => ({ labels: { worker: String(w) }, value })),
  );
  const counters = (): Record<string, number> => status().counters ?? {};
  c(
    'weir_dataplane_received_packets_total',
    'Packets the data plane received (every frame the engine saw).',
    [],
    () => {
      const k = counters();
      return k.rx === undefined ? [] : [{ value: k.rx }];
    },
  );
  c(
    'weir_dataplane_drops_total',
    'Packets the data plane dropped, by reason (snake_case of the engine counter, e.g. no_backend, malformed, conntrack_full; tx_error and tx_unsent: the kernel refused or had no room to send).',
    ['reason'],
    () => classifyCounters(counters()).drops,
  );
  c(
    'weir_dataplane_sent_packets_total',
    'Packets the data plane sent, by kind (nat, nat_reply, gre, l2, icmp_to_backend, icmp_to_client, frag_needed; next_hop: of those, sent as frames to a next hop).',
    ['kind'],
    () => classifyCounters(counters()).sent,
  );
  c(
    'weir_dataplane_passed_packets_total',
    'Packets left to the kernel, by reason (no_vip, not_ip, fragment).',
    ['reason'],
    () => classifyCounters(counters()).passed,
  );
  c(
    'weir_dataplane_events_total',
    'Other data-plane events (rescheduled flows, checksums completed, passive-health signals, …).',
    ['event'],
    () => classifyCounters(counters()).events,
  );
  c('weir_dataplane_new_flows_total', 'Flows that got a backend from a Maglev table.', [], () => {
    const k = counters();
    return k.newFlows === undefined ? [] : [{ value: k.newFlows }];
  });
  c(
    'weir_ring_drops_total',
    "Frames the kernel dropped because a worker's receive ring was full (PACKET_STATISTICS, XDP_STATISTICS).",
    [],
    () => {
      const k = counters();
      return k.ringDrops === undefined ? [] : [{ value: k.ringDrops }];
    },
  );

  // Per VIP and per backend: one census of the connection table per scrape (every metric below
  // reads the same snapshot, taken by the first one a scrape collects).
  let snap: { at: number; rows: VipTraffic[] } = { at: -Infinity, rows: [] };
  const traffic = (): VipTraffic[] => {
    const now = performance.now();
    if (now - snap.at > 250) snap = { at: now, rows: rt.hooks.traffic?.() ?? [] };
    return snap.rows;
  };
  const dirs = ['in', 'out'] as const;
  c(
    'weir_vip_packets_total',
    'Packets weir received for the VIP: in = client → VIP, out = backend → client (nat replies; DSR replies bypass weir). Includes those not forwarded.',
    ['vip', 'direction'],
    () =>
      traffic().flatMap((v) =>
        dirs.map((d) => ({ labels: { vip: v.name, direction: d }, value: d === 'in' ? v.packetsIn : v.packetsOut })),
      ),
  );
  c('weir_vip_bytes_total', 'IP bytes of weir_vip_packets_total.', ['vip', 'direction'], () =>
    traffic().flatMap((v) =>
      dirs.map((d) => ({ labels: { vip: v.name, direction: d }, value: d === 'in' ? v.bytesIn : v.bytesOut })),
    ),
  );
  c(
    'weir_vip_dropped_packets_total',
    'Packets for the VIP that were not forwarded (dropped, or answered with an ICMP error); reasons are in weir_dataplane_drops_total.',
    ['vip', 'direction'],
    () =>
      traffic().flatMap((v) =>
        dirs.map((d) => ({ labels: { vip: v.name, direction: d }, value: d === 'in' ? v.droppedIn : v.droppedOut })),
      ),
  );
  c('weir_vip_new_flows_total', 'Flows of the VIP that got a backend from its Maglev table.', ['vip'], () =>
    traffic().map((v) => ({ labels: { vip: v.name }, value: v.newFlows })),
  );
  g('weir_vip_active_flows', 'Connection-table entries of the VIP now.', ['vip'], () =>
    traffic().map((v) => ({ labels: { vip: v.name }, value: v.activeFlows })),
  );
  const each = (f: (v: VipTraffic, b: VipTraffic['backends'][number]) => Sample[]): Sample[] =>
    traffic().flatMap((v) => v.backends.flatMap((b) => f(v, b)));
  c(
    'weir_backend_packets_total',
    'Packets weir forwarded to the backend (in) and, in nat mode, from it back to clients (out).',
    ['vip', 'backend', 'direction'],
    () =>
      each((v, b) =>
        dirs.map((d) => ({
          labels: { vip: v.name, backend: b.name, direction: d },
          value: d === 'in' ? b.packetsIn : b.packetsOut,
        })),
      ),
  );
  c('weir_backend_bytes_total', 'IP bytes of weir_backend_packets_total.', ['vip', 'backend', 'direction'], () =>
    each((v, b) =>
      dirs.map((d) => ({
        labels: { vip: v.name, backend: b.name, direction: d },
        value: d === 'in' ? b.bytesIn : b.bytesOut,
      })),
    ),
  );
  c('weir_backend_new_flows_total', 'Flows the Maglev table sent to the backend.', ['vip', 'backend'], () =>
    each((v, b) => [{ labels: { vip: v.name, backend: b.name }, value: b.newFlows }]),
  );
  g('weir_backend_active_flows', 'Connection-table entries of the backend now.', ['vip', 'backend'], () =>
    each((v, b) => [{ labels: { vip: v.name, backend: b.name }, value: b.activeFlows }]),
  );

  // Histograms, observed as things happen.
  const probes = new Histogram({
    name: 'weir_health_probe_duration_seconds',
    help: 'Active health probe latency by VIP, probe type and result.',
    labelNames: ['vip', 'type', 'result'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [r],
  });
  if (rt.health) {
    rt.health.probeObserver = (vip, type, result, ms) => probes.observe({ vip, type, result }, ms / 1000);
  }
  const publish = new Histogram({
    name: 'weir_tables_publish_duration_seconds',
    help: 'Time to publish a table generation to the data plane (build the message, nftables, post to workers).',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [r],
  });
  rt.publishObserver = (s) => publish.observe(s);
  return r;
}
