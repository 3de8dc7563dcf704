// The ratio chart of docs/benchmarks.md, written as plain SVG: one panel per peer, a group of
// bars per metric (one bar per weir variant, weir ÷ peer), and a dashed line at 1.0.
import { METRICS, type Ratios, type RowResult } from './results.js';
import type { Kind } from './variants.js';

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#637939',
];
/** A colour per mode (hue) and io mode (shade); `workers: auto` bars are hatched. */
const COLOURS: Record<string, Record<string, string>> = {
  nat: { afpacket: '#08519c', tun: '#4292c6', afxdp: '#9ecae1' },
  'dsr-gre': { afpacket: '#a63603', tun: '#f16913', afxdp: '#fdae6b' },
  'dsr-l2': { afpacket: '#006d2c', tun: '#41ab5d', afxdp: '#a1d99b' },
};

function colour(r: RowResult, i: number): string {
  return COLOURS[r.mode ?? '']?.[r.io ?? ''] ?? PALETTE[i % PALETTE.length];
}
const PEER_NAMES: Record<string, string> = {
  kernel: 'kernel forwarding',
  nftables: 'nftables DNAT',
  haproxy: 'HAProxy mode tcp',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(x: number): string {
  return x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2);
}

/** Axis label of 2^e: 4, 2, 1, 1/2, 1/4 … */
function tick(e: number): string {
  return e >= 0 ? String(2 ** e) : `1/${2 ** -e}`;
}

/**
 * The SVG text; `rows` gives the weir variants (status ok) and the peers that were measured.
 * The y axis is logarithmic (powers of two) and bars start at 1.0, so 0.5× and 2× are equally
 * far from parity; a ratio of 0 (nothing got through) is drawn to the bottom and marked "0".
 * Colour: hue by mode, shade by io mode; hatched bars are `workers: auto`.
 */
export function ratioChart(rows: RowResult[], ratios: Ratios, title: string): string {
  const weir = rows.filter((r) => r.kind === 'weir' && r.status === 'ok');
  const peers = rows.filter((r) => r.kind !== 'weir').map((r) => r.kind);
  const barW = 9,
    barGap = 2,
    groupGap = 18,
    left = 52,
    right = 16,
    panelH = 200,
    panelGap = 58,
    top = 40;
  const groupW = Math.max(1, weir.length) * (barW + barGap) - barGap;
  const width = Math.max(640, left + right + METRICS.length * (groupW + groupGap));
  const legendRows = Math.ceil(weir.length / 3);
  const height = top + peers.length * (panelH + panelGap) + legendRows * 18 + 16;
  // One scale for every panel: powers of two around the ratios seen, within 1/64 … 64.
  let lo = 0.5,
    hi = 2;
  for (const w of weir)
    for (const m of METRICS)
      for (const p of peers) {
        const r = ratios[w.id]?.[m.key]?.[p];
        if (r !== null && r !== undefined && r > 0) {
          lo = Math.min(lo, r);
          hi = Math.max(hi, r);
        }
      }
  const e0 = Math.max(-6, Math.floor(Math.log2(lo))),
    e1 = Math.min(11, Math.ceil(Math.log2(hi)));
  const tickStep = e1 - e0 > 10 ? 2 : 1;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    '<defs><pattern id="auto" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="4" fill="#ffffff" fill-opacity="0.55"/></pattern></defs>',
  );
  out.push(`<text x="${left}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(
    `<text x="${left}" y="32" fill="#555">weir ÷ peer, same run, log scale. Above 1: weir higher — better for pps, conn/s, Gbit/s; worse for ↓ (connect times).</text>`,
  );
  peers.forEach((peer: Kind, pi) => {
    const y0 = top + pi * (panelH + panelGap) + 14;
    const yOf = (r: number): number => {
      const e = Math.min(e1, Math.max(e0, Math.log2(r)));
      return y0 + panelH - ((e - e0) / (e1 - e0)) * panelH;
    };
    out.push(`<text x="${left}" y="${y0 - 4}" font-weight="bold">weir ÷ ${esc(PEER_NAMES[peer] ?? peer)}</text>`);
    for (let e = e0; e <= e1; e++) {
      const y = yOf(2 ** e);
      out.push(`<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" stroke="#eee"/>`);
      if (e % tickStep === 0)
        out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end" fill="#555">${tick(e)}</text>`);
    }
    out.push(`<line x1="${left}" x2="${left}" y1="${y0}" y2="${y0 + panelH}" stroke="#999"/>`);
    const yOne = yOf(1);
    METRICS.forEach((m, mi) => {
      const gx = left + 10 + mi * (groupW + groupGap);
      weir.forEach((w, wi) => {
        const r = ratios[w.id]?.[m.key]?.[peer];
        const x = gx + wi * (barW + barGap);
        if (r === null || r === undefined) return; // not measured: no bar
        const y = r > 0 ? yOf(r) : y0 + panelH;
        const [ya, yb] = y < yOne ? [y, yOne] : [yOne, y];
        const h = Math.max(1, yb - ya).toFixed(1);
        out.push(
          `<rect x="${x}" y="${ya.toFixed(1)}" width="${barW}" height="${h}" fill="${colour(w, wi)}"><title>${esc(`${w.label}, ${m.title}: ${fmt(r)} × ${peer}`)}</title></rect>`,
        );
        if (w.workers === 'auto')
          out.push(`<rect x="${x}" y="${ya.toFixed(1)}" width="${barW}" height="${h}" fill="url(#auto)"/>`);
        // Off the scale: 0 (nothing got through) below, a mark above; the tables have the figures.
        const e = r > 0 ? Math.log2(r) : -Infinity;
        if (e < e0)
          out.push(
            `<text x="${x + barW / 2}" y="${y0 + panelH + 10}" text-anchor="middle" font-size="7">${r < 0.005 ? '0' : '<'}</text>`,
          );
        if (e > e1) out.push(`<text x="${x + barW / 2}" y="${y0 - 2}" text-anchor="middle" font-size="7">▲</text>`);
      });
      const label = m.better === 'lower' ? `${m.short} ↓` : m.short;
      out.push(`<text x="${gx + groupW / 2}" y="${y0 + panelH + 22}" text-anchor="middle">${esc(label)}</text>`);
    });
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${yOne}" y2="${yOne}" stroke="#000" stroke-dasharray="5,3"/>`,
    );
  });
  const ly = top + peers.length * (panelH + panelGap) + 4;
  weir.forEach((w, wi) => {
    const x = left + (wi % 3) * Math.floor((width - left) / 3);
    const y = ly + Math.floor(wi / 3) * 18;
    out.push(`<rect x="${x}" y="${y}" width="10" height="10" fill="${colour(w, wi)}"/>`);
    if (w.workers === 'auto') out.push(`<rect x="${x}" y="${y}" width="10" height="10" fill="url(#auto)"/>`);
    out.push(`<text x="${x + 14}" y="${y + 9}">${esc(w.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
