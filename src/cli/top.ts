// `weir top`: a live view, refreshed every second, of what weir carries: per VIP and per backend
// the packet, bit and new-flow rates, the active flows and health, and how full the connection
// table is. renderTop() is pure (tests call it); the loop is in program.ts.
import type { BackendView, ConntrackStatsView, VipView } from '../control/api.js';
import { percent, si, table } from './format.js';

export function renderTop(
  vips: readonly VipView[],
  backends: readonly BackendView[],
  ct: ConntrackStatsView,
  now = new Date(),
): string {
  const t = (v: VipView | BackendView) => v.traffic;
  let s = `weir top — ${now.toISOString()}   conntrack ${ct.size}/${ct.capacity} (${percent(ct.capacity > 0 ? ct.size / ct.capacity : 0)})\n\n`;
  s += table(
    ['VIP', 'MODE', 'STATE', 'SERVING', 'PKT/S IN', 'BIT/S IN', 'PKT/S OUT', 'FLOWS/S', 'ACTIVE', 'PACKETS IN'],
    vips.map((v) => [
      v.name,
      v.mode,
      v.state,
      `${v.activeBackends}/${v.backends}`,
      si(t(v)?.packetsInPerSec),
      si(t(v)?.bitsInPerSec),
      si(t(v)?.packetsOutPerSec),
      si(t(v)?.newFlowsPerSec),
      si(t(v)?.activeFlows),
      si(t(v)?.packetsIn),
    ]),
  );
  s += '\n';
  s += table(
    ['VIP', 'BACKEND', 'HEALTH', 'WEIGHT', 'SHARE', 'PKT/S IN', 'BIT/S IN', 'PKT/S OUT', 'FLOWS/S', 'ACTIVE'],
    backends.map((b) => [
      b.vip,
      b.name,
      b.drained ? `${b.health},drained` : b.health,
      b.weight,
      percent(b.share),
      si(t(b)?.packetsInPerSec),
      si(t(b)?.bitsInPerSec),
      si(t(b)?.packetsOutPerSec),
      si(t(b)?.newFlowsPerSec),
      si(t(b)?.activeFlows),
    ]),
  );
  if (vips.some((v) => !v.traffic)) s += '\n(no traffic counters: the data plane is not attached)\n';
  return s;
}
