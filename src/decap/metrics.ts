// `weir decap --metrics`: the backend's Prometheus metrics (GRE packets received, decapsulated,
// dropped by reason, written into the TUN) plus process and Node runtime metrics, read from the
// runner's counters at scrape time.
import { collectedCounter, collectedGauge, registryWithRuntime, type Registry } from '../metrics/registry.js';
import { VERSION } from '../version.js';

/** The registry over `counters()` (DecapRunner.counters()). */
export function decapRegistry(counters: () => Record<string, number>): Registry {
  const r = registryWithRuntime();
  const k = (name: string): number => counters()[name] ?? 0;
  collectedGauge(r, {
    name: 'weir_decap_build_info',
    help: 'weir version of this decap process (always 1).',
    labelNames: ['version'],
    collect: () => [{ labels: { version: VERSION }, value: 1 }],
  });
  collectedCounter(r, {
    name: 'weir_decap_received_packets_total',
    help: 'GRE packets handed to the decapsulator, by outer IP version.',
    labelNames: ['family'],
    collect: () => [
      { labels: { family: 'ipv4' }, value: k('outer_ipv4') },
      { labels: { family: 'ipv6' }, value: k('outer_ipv6') },
    ],
  });
  collectedCounter(r, {
    name: 'weir_decap_decapsulated_packets_total',
    help: 'Inner packets left for the TUN, by inner IP version.',
    labelNames: ['family'],
    collect: () => [
      { labels: { family: 'ipv4' }, value: k('inner_ipv4') },
      { labels: { family: 'ipv6' }, value: k('inner_ipv6') },
    ],
  });
  collectedCounter(r, {
    name: 'weir_decap_tun_written_packets_total',
    help: 'Inner packets written into the TUN.',
    collect: () => [{ value: k('tun_written') }],
  });
  collectedCounter(r, {
    name: 'weir_decap_drops_total',
    help: 'Packets dropped, by reason (outer_malformed, gre_checksum, key_mismatch, inner_dst, tun_full, …).',
    labelNames: ['reason'],
    collect: () =>
      Object.entries(counters())
        .filter(([n]) => n.startsWith('drop_'))
        .map(([n, value]) => ({ labels: { reason: n.slice(5) }, value })),
  });
  return r;
}
