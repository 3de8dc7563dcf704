// The ratio chart of docs/benchmarks.md, written as plain SVG: one panel per peer, a group of
// bars per metric (one bar per weir variant, weir ÷ peer), and a dashed line at 1.0.
import { METRICS, type Ratios, type RowResult } from './results.js';
import type { Kind } from './variants.js';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];
const PEER_NAMES: Record<string, string> = { kernel: 'kernel forwarding', nftables: 'nftables DNAT', haproxy: 'HAProxy mode tcp' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(x: number): string {
  return x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2);
}

/** The SVG text; `rows` gives the weir variants (status ok) and the peers that were measured. */
export function ratioChart(rows: RowResult[], ratios: Ratios, title: string): string {
  const weir = rows.filter((r) => r.kind === 'weir' && r.status === 'ok');
  const peers = rows.filter((r) => r.kind !== 'weir').map((r) => r.kind);
  const barW = 9, barGap = 2, groupGap = 18, left = 52, right = 16, panelH = 190, panelGap = 58, top = 40;
  const groupW = Math.max(1, weir.length) * (barW + barGap) - barGap;
  const width = left + right + METRICS.length * (groupW + groupGap);
  const legendRows = Math.ceil(weir.length / 3);
  const height = top + peers.length * (panelH + panelGap) + legendRows * 18 + 16;
  // One y scale for every panel: 0 … the largest ratio (at least 1.5, at most 4; taller bars are cut and labelled).
  let maxR = 1.5;
  for (const w of weir) for (const m of METRICS) for (const p of peers) maxR = Math.max(maxR, ratios[w.id]?.[m.key]?.[p] ?? 0);
  const yMax = Math.min(4, Math.ceil(maxR * 2) / 2);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${left}" y="32" fill="#555">weir ÷ peer, same run. Above 1.0: weir higher (better for throughput; worse for the ↓ connect times).</text>`);
  peers.forEach((peer: Kind, pi) => {
    const y0 = top + pi * (panelH + panelGap) + 14;
    const yOf = (r: number): number => y0 + panelH - (Math.min(r, yMax) / yMax) * panelH;
    out.push(`<text x="${left}" y="${y0 - 4}" font-weight="bold">weir ÷ ${esc(PEER_NAMES[peer] ?? peer)}</text>`);
    // Axis and grid.
    for (let t = 0; t <= yMax + 1e-9; t += 0.5) {
      const y = yOf(t);
      out.push(`<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" stroke="#eee"/>`);
      out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end" fill="#555">${t.toFixed(1)}</text>`);
    }
    out.push(`<line x1="${left}" x2="${left}" y1="${y0}" y2="${y0 + panelH}" stroke="#999"/>`);
    METRICS.forEach((m, mi) => {
      const gx = left + 10 + mi * (groupW + groupGap);
      weir.forEach((w, wi) => {
        const r = ratios[w.id]?.[m.key]?.[peer];
        const x = gx + wi * (barW + barGap);
        if (r === null || r === undefined) {
          out.push(`<text x="${x + barW / 2}" y="${y0 + panelH - 3}" text-anchor="middle" font-size="8" fill="#aaa">·</text>`);
          return;
        }
        const y = yOf(r);
        out.push(`<rect x="${x}" y="${y.toFixed(1)}" width="${barW}" height="${(y0 + panelH - y).toFixed(1)}" fill="${PALETTE[wi % PALETTE.length]}"><title>${esc(`${w.label}, ${m.title}: ${fmt(r)} × ${peer}`)}</title></rect>`);
        if (r > yMax) out.push(`<text x="${x + barW / 2}" y="${y - 2}" text-anchor="middle" font-size="8">${fmt(r)}</text>`);
      });
      const label = m.better === 'lower' ? `${m.short} ↓` : m.short;
      out.push(`<text x="${gx + groupW / 2}" y="${y0 + panelH + 14}" text-anchor="middle">${esc(label)}</text>`);
    });
    const y1 = yOf(1);
    out.push(`<line x1="${left}" x2="${width - right}" y1="${y1}" y2="${y1}" stroke="#000" stroke-dasharray="5,3"/>`);
  });
  const ly = top + peers.length * (panelH + panelGap) + 4;
  weir.forEach((w, wi) => {
    const x = left + (wi % 3) * Math.floor((width - left) / 3);
    const y = ly + Math.floor(wi / 3) * 18;
    out.push(`<rect x="${x}" y="${y}" width="10" height="10" fill="${PALETTE[wi % PALETTE.length]}"/>`);
    out.push(`<text x="${x + 14}" y="${y + 9}">${esc(w.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
