// The nat SYN proxy (engine.ts "SYN proxy") packet by packet: segments are built and read here
// by hand (options as bytes, checksums with the reference sum of engine-helpers), so the judge
// shares no code with the engine's TCP option reader or segment writer. Every output is checked
// with the reference checksum and, at the end, by tshark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINKTYPE_RAW, parseIp } from '../../src/packet/index.js';
import { ConnTable, CT_ESTABLISHED, CT_SYN_SENT } from '../../src/lb/conntrack.js';
import { VipTable, type EngineTableOptions, type VipSpec } from '../../src/lb/vip-table.js';
import { SnatAllocator, SNAT_PROPOSED } from '../../src/lb/snat.js';
import {
  ENGINE_COUNTER_NAMES,
  Engine,
  EngineOutput,
  PROXY_RETRY_MS,
  VERDICT_NAMES,
  VERDICT_TX_IP,
} from '../../src/lb/engine.js';
import { checksumProblems, expectedBackend, refChecksum, refSum, TABLE_OPTS, vipSpecs } from './engine-helpers.js';
import { tsharkFields, tsharkMissing } from '../helpers/tshark.js';

const FIN = 1,
  SYN = 2,
  RST = 4,
  PSH = 8,
  ACK = 16;
const VIP4 = '198.18.0.10',
  VIP6 = 'fd00::10',
  SNAT4 = '198.18.0.100';

// ─── segments by hand ───────────────────────────────────────────────────────────────────────
interface Seg {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  win: number;
  /** Option bytes as sent (padded with EOL to 4). */
  opts: number[];
  payload: number;
}

const ipb = (s: string): Uint8Array => {
  const b = parseIp(s);
  if (!b) throw new Error(s);
  return b;
};
const u32 = (n: number): number[] => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const MSS = (v: number): number[] => [2, 4, v >> 8, v & 255];
const WS = (v: number): number[] => [1, 3, 3, v];
const SACKP = [1, 1, 4, 2];
const TS = (val: number, ecr: number): number[] => [1, 1, 8, 10, ...u32(val), ...u32(ecr)];
const SACK = (...edges: number[]): number[] => [1, 1, 5, 2 + 4 * edges.length, ...edges.flatMap(u32)];

function seg(s: Partial<Seg> & Pick<Seg, 'src' | 'dst' | 'sport' | 'dport'>): Uint8Array {
  const o = [...(s.opts ?? [])];
  while (o.length % 4 !== 0) o.push(0);
  const v6 = s.src.includes(':');
  const ih = v6 ? 40 : 20,
    th = 20 + o.length,
    pl = s.payload ?? 0;
  const b = new Uint8Array(ih + th + pl);
  if (v6) {
    b.set([0x60, 0, 0, 0, (th + pl) >> 8, (th + pl) & 255, 6, 64], 0);
    b.set(ipb(s.src), 8);
    b.set(ipb(s.dst), 24);
  } else {
    const t = b.length;
    b.set([0x45, 0, t >> 8, t & 255, 0, 1, 0x40, 0, 64, 6, 0, 0], 0);
    b.set(ipb(s.src), 12);
    b.set(ipb(s.dst), 16);
    const c = refChecksum(b, 0, 20);
    b[10] = c >> 8;
    b[11] = c & 255;
  }
  const l = ih;
  b.set([s.sport >> 8, s.sport & 255, s.dport >> 8, s.dport & 255, ...u32(s.seq ?? 0), ...u32(s.ack ?? 0)], l);
  b[l + 12] = (th / 4) << 4;
  b[l + 13] = s.flags ?? ACK;
  const w = s.win ?? 512;
  b[l + 14] = w >> 8;
  b[l + 15] = w & 255;
  b.set(o, l + 20);
  for (let i = 0; i < pl; i++) b[l + th + i] = (i * 7) & 255;
  const len = th + pl;
  const pseudo = v6 ? refSum(b, 8, 32) + 6 + len : refSum(b, 12, 8) + 6 + len;
  const c = refChecksum(b, l, len, pseudo);
  b[l + 16] = c >> 8;
  b[l + 17] = c & 255;
  return b;
}

interface Parsed {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  win: number;
  mss?: number;
  ws?: number;
  sackPerm: boolean;
  tsval?: number;
  tsecr?: number;
  sack: number[];
  payload: number;
}

const text = (b: Uint8Array): string =>
  b.length === 4 ? b.join('.') : (Buffer.from(b).toString('hex').match(/.{4}/g) ?? []).join(':');

function parse(b: Uint8Array): Parsed {
  const v6 = b[0] >> 4 === 6;
  const l = v6 ? 40 : 20;
  const r32 = (o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  const th = (b[l + 12] >> 4) * 4;
  const p: Parsed = {
    src: text(v6 ? b.subarray(8, 24) : b.subarray(12, 16)),
    dst: text(v6 ? b.subarray(24, 40) : b.subarray(16, 20)),
    sport: (b[l] << 8) | b[l + 1],
    dport: (b[l + 2] << 8) | b[l + 3],
    seq: r32(l + 4),
    ack: r32(l + 8),
    flags: b[l + 13],
    win: (b[l + 14] << 8) | b[l + 15],
    sackPerm: false,
    sack: [],
    payload: b.length - l - th,
  };
  for (let i = l + 20; i < l + th;) {
    const k = b[i];
    if (k === 0) break;
    if (k === 1) {
      i++;
      continue;
    }
    const n = b[i + 1];
    if (k === 2) p.mss = (b[i + 2] << 8) | b[i + 3];
    if (k === 3) p.ws = b[i + 2];
    if (k === 4) p.sackPerm = true;
    if (k === 8) {
      p.tsval = r32(i + 2);
      p.tsecr = r32(i + 6);
    }
    if (k === 5) for (let j = i + 2; j < i + n; j += 4) p.sack.push(r32(j));
    i += n;
  }
  return p;
}

// ─── engine under test ───────────────────────────────────────────────────────────────────────
const judged: Array<{ bytes: Uint8Array; name: string }> = [];

function setup(synProxy: 'on' | 'auto', opts: Partial<EngineTableOptions> = {}) {
  const ct = ConnTable.create({ capacity: 4096, seed: 7 });
  const specs: VipSpec[] = vipSpecs().map((v) => (v.mode === 'nat' ? { ...v, synProxy } : v));
  const table = new VipTable(specs, { ...TABLE_OPTS, cookieKey: [0x1234567, -0x7654321], ...opts });
  const snat = new SnatAllocator();
  const engine = new Engine(ct, table, snat, undefined, { linkType: LINKTYPE_RAW });
  const out = new EngineOutput();
  const count = (name: string): number => engine.counters[(ENGINE_COUNTER_NAMES as readonly string[]).indexOf(name)];
  const run = (input: Uint8Array, name: string, now = 1000): { verdict: string; reason: string; out?: Parsed } => {
    const buf = new Uint8Array(64 + input.length + 16).fill(0xee);
    buf.set(input, 64);
    const v = engine.process(buf, 64, input.length, 0, now, out, 64);
    for (let i = 64 + input.length; i < buf.length; i++)
      assert.equal(buf[i], 0xee, `${name}: no write past the packet`);
    const reason = ENGINE_COUNTER_NAMES[out.reason];
    if (v !== VERDICT_TX_IP) return { verdict: VERDICT_NAMES[v], reason };
    const bytes = out.buf.slice(out.off, out.off + out.len);
    assert.deepEqual(checksumProblems(bytes), [], `checksums of ${name}`);
    judged.push({ bytes, name });
    return { verdict: VERDICT_NAMES[v], reason, out: parse(bytes) };
  };
  return { ct, specs, table, engine, snat, run, count };
}

const CLIENT = '198.18.100.7';
const c2v = (sport: number, x: Partial<Seg>): Uint8Array => seg({ src: CLIENT, dst: VIP4, sport, dport: 80, ...x });

test('syn_proxy on: a SYN is answered by a cookie SYN-ACK from the VIP, with no entry and no SNAT port', () => {
  const fx = setup('on');
  const r = fx.run(
    c2v(40001, { flags: SYN, seq: 0xfffffff0, win: 64240, opts: [...MSS(1460), ...SACKP, ...TS(111, 0), ...WS(9)] }),
    'SYN',
  );
  assert.equal(r.verdict, 'TX_IP');
  assert.equal(r.reason, 'txSynCookie');
  const o = r.out!;
  assert.deepEqual([o.src, o.dst, o.sport, o.dport], [VIP4, CLIENT, 80, 40001]);
  assert.equal(o.flags, SYN | ACK);
  assert.equal(o.ack, 0xfffffff1, 'ack = client ISN + 1 (wraps)');
  assert.equal(o.mss, 1460, 'MSS of the path MTU (1500 − 40)');
  assert.equal(o.ws, 7, 'weir announces its own window scale');
  assert.ok(o.sackPerm);
  assert.equal(o.tsecr, 111, "TSecr echoes the client's TSval");
  assert.equal(o.win, 65535);
  assert.equal(o.payload, 0);
  assert.equal(fx.ct.size(), 0, 'nothing stored');
  assert.equal(fx.snat.counters[SNAT_PROPOSED], 0, 'no SNAT port');
  // Without options: no window scale, SACK or timestamps in the answer (RFC 7323 §1.3, RFC 2018).
  const p = fx.run(c2v(40002, { flags: SYN, seq: 5 }), 'bare SYN').out!;
  assert.deepEqual([p.ws, p.sackPerm, p.tsval], [undefined, false, undefined]);
  assert.equal(p.mss, 1460);
  // A SYN with a bad checksum or with FIN is not answered.
  const bad = c2v(40003, { flags: SYN, seq: 5 });
  bad[bad.length - 3] ^= 1;
  assert.equal(fx.run(bad, 'bad SYN').reason, 'dropBadSyn');
  assert.equal(fx.run(c2v(40004, { flags: SYN | FIN, seq: 5 }), 'SYN+FIN').reason, 'dropBadSyn');
});

test('syn_proxy on: the full handshake, then data both ways with seq/ack, SACK, timestamps and windows translated', () => {
  const fx = setup('on');
  const vip = fx.specs.find((v) => v.name === 'nat4')!;
  const be = expectedBackend(vip, 6, CLIENT, VIP4, 40010, 80);
  const isn = 0x7ffffffe;
  const synack = fx.run(
    c2v(40010, { flags: SYN, seq: isn, win: 64240, opts: [...MSS(1400), ...SACKP, ...TS(1000, 0), ...WS(8)] }),
    'SYN',
  ).out!;
  const cookie = synack.seq,
    weirTs = synack.tsval!;
  // The client's ACK opens the flow: weir's SYN to the backend carries the client's ISN and options.
  const r = fx.run(c2v(40010, { seq: isn + 1, ack: cookie + 1, win: 502, opts: TS(1001, weirTs) }), 'ACK');
  assert.equal(r.reason, 'txProxySyn');
  const s = r.out!;
  assert.deepEqual([s.src, s.dst, s.sport, s.dport], [SNAT4, be.address, 10000, 8080]);
  assert.equal(s.flags, SYN);
  assert.equal(s.seq, isn, "the client's ISN");
  assert.equal(s.mss, 1400, "the client's MSS from the cookie");
  assert.equal(s.ws, 8);
  assert.ok(s.sackPerm);
  assert.deepEqual([s.tsval, s.tsecr], [1001, 0]);
  assert.equal(s.win, 65535, '502 << 8, at most 65535 (a SYN window is not scaled)');
  assert.equal(fx.ct.size(), 1);
  const e = fx.ct.lookup4(6, ipWord(CLIENT), 40010, ipWord(VIP4), 80);
  assert.equal(fx.ct.stateOf(e), CT_SYN_SENT);
  // Data before the backend answered is held (one segment per flow); a second one is dropped.
  const early = c2v(40010, { seq: isn + 1, ack: cookie + 1, flags: ACK | PSH, payload: 20, opts: TS(1002, weirTs) });
  assert.equal(fx.run(early, 'early').reason, 'dropProxyHeld');
  const more = c2v(40010, { seq: isn + 21, ack: cookie + 1, flags: ACK | PSH, payload: 5, opts: TS(1002, weirTs) });
  assert.equal(fx.run(more, 'more').reason, 'dropProxyPending');
  const B = 0xfffff000;
  const b2s = (x: Partial<Seg>): Uint8Array => seg({ src: be.address, dst: SNAT4, sport: 8080, dport: 10000, ...x });
  // A SYN-ACK for another SYN (an older connection the backend still holds on this SNAT port):
  // reset it (seq = its ack, RFC 9293 §3.10.7.3) and keep waiting.
  const stale = fx.run(b2s({ flags: SYN | ACK, seq: 777, ack: 4242, opts: MSS(1460) }), 'stale SYN-ACK');
  assert.equal(stale.reason, 'txProxyRst');
  assert.deepEqual([stale.out!.flags, stale.out!.seq, stale.out!.dst], [RST, 4242, be.address]);
  assert.equal(fx.count('synProxied'), 0);
  // The backend's SYN-ACK: the held segment, translated, ACKs it; nothing goes to the client.
  const a = fx.run(
    b2s({
      flags: SYN | ACK,
      seq: B,
      ack: isn + 1,
      win: 65160,
      opts: [...MSS(1460), ...SACKP, ...TS(50000, 1001), ...WS(9)],
    }),
    'backend SYN-ACK',
  );
  assert.equal(a.reason, 'txProxyAck');
  const ack = a.out!;
  assert.deepEqual([ack.src, ack.dst, ack.sport, ack.dport], [SNAT4, be.address, 10000, 8080]);
  assert.equal(ack.flags, ACK | PSH);
  assert.equal(ack.seq, isn + 1);
  assert.equal(ack.ack, (B + 1) >>> 0);
  assert.deepEqual([ack.tsval, ack.tsecr], [1002, 50000]);
  assert.equal(ack.payload, 20, 'the held data');
  assert.equal(ack.win, 512, "the client's window (the backend scales it by the client's shift too)");
  assert.equal(fx.ct.stateOf(e), CT_ESTABLISHED);
  assert.equal(fx.count('synProxied'), 1);
  const delta = (cookie - B) >>> 0;
  // Client → backend: ack, SACK edges and TSecr into the backend's spaces.
  const d = fx.run(
    c2v(40010, {
      seq: isn + 1,
      ack: cookie + 1,
      flags: ACK | PSH,
      payload: 33,
      win: 700,
      opts: [...TS(1010, weirTs + 40), ...SACK(cookie + 101, cookie + 201)],
    }),
    'client data',
  );
  assert.equal(d.reason, 'txNat');
  const cd = d.out!;
  assert.deepEqual([cd.src, cd.dst, cd.sport, cd.dport], [SNAT4, be.address, 10000, 8080]);
  assert.equal(cd.seq, isn + 1);
  assert.equal(cd.ack, (B + 1) >>> 0);
  assert.deepEqual(cd.sack, [(B + 101) >>> 0, (B + 201) >>> 0]);
  assert.deepEqual([cd.tsval, cd.tsecr], [1010, 50040]);
  assert.equal(cd.win, 700);
  assert.equal(cd.payload, 33);
  // Backend → client: seq into the cookie's space, TSval into weir's clock, window 9 → 7.
  const bd = fx.run(
    b2s({ seq: B + 1, ack: isn + 34, flags: ACK | PSH, payload: 100, win: 300, opts: TS(50007, 1010) }),
    'backend data',
  );
  assert.equal(bd.reason, 'txNatReply');
  const o = bd.out!;
  assert.deepEqual([o.src, o.dst, o.sport, o.dport], [VIP4, CLIENT, 80, 40010]);
  assert.equal(o.seq, (B + 1 + delta) >>> 0);
  assert.equal(o.seq, (cookie + 1) >>> 0);
  assert.equal(o.ack, isn + 34);
  assert.deepEqual([o.tsval, o.tsecr], [(weirTs + 7) >>> 0, 1010]);
  assert.equal(o.win, 1200, '300 << 9 >> 7');
  assert.equal(o.payload, 100);
  // A retransmitted SYN-ACK (weir's ACK was lost) is ACKed again, the translation unchanged:
  // a bare ACK with the window of the client's first ACK.
  const again = fx.run(
    b2s({ flags: SYN | ACK, seq: B, ack: isn + 1, opts: [...MSS(1460), ...SACKP, ...TS(50010, 1001), ...WS(9)] }),
    'SYN-ACK again',
  );
  assert.equal(again.reason, 'txProxyAck');
  const ag = again.out!;
  assert.deepEqual([ag.flags, ag.seq, ag.ack, ag.payload, ag.win], [ACK, isn + 1, (B + 1) >>> 0, 0, 502]);
  assert.deepEqual([ag.tsval, ag.tsecr], [1001, 50010]);
  assert.equal(fx.count('synProxied'), 1);
  // FIN from the client, translated; the flow closes as any nat flow.
  const f = fx.run(c2v(40010, { seq: isn + 34, ack: cookie + 101, flags: FIN | ACK }), 'FIN').out!;
  assert.equal(f.ack, (B + 101) >>> 0);
});

test('syn_proxy on over IPv6: cookie SYN-ACK and the SYN to the backend are well formed', () => {
  const fx = setup('on');
  const client = 'fd00:100::7';
  const vip = fx.specs.find((v) => v.name === 'nat6')!;
  const be = expectedBackend(vip, 6, client, VIP6, 40020, 80);
  const c = (x: Partial<Seg>): Uint8Array => seg({ src: client, dst: VIP6, sport: 40020, dport: 80, ...x });
  const sa = fx.run(c({ flags: SYN, seq: 77, opts: [...MSS(1440), ...WS(2)] }), 'SYN6').out!;
  assert.equal(sa.mss, 1440, 'path MTU 1500 − 60');
  assert.equal(sa.ws, 7);
  const s = fx.run(c({ seq: 78, ack: sa.seq + 1 }), 'ACK6');
  assert.equal(s.reason, 'txProxySyn');
  assert.equal(s.out!.dst, text(ipb(be.address)));
  assert.equal(s.out!.mss, 1440);
  assert.equal(s.out!.ws, 2);
  assert.equal(s.out!.tsval, undefined);
  const b2s = (x: Partial<Seg>): Uint8Array =>
    seg({ src: be.address, dst: 'fd00::100', sport: 8080, dport: 10000, ...x });
  // This backend does no window scaling: windows are unscaled both ways.
  assert.equal(fx.run(b2s({ flags: SYN | ACK, seq: 9, ack: 78, opts: MSS(1440) }), 'SYN-ACK6').reason, 'txProxyAck');
  const d = fx.run(c({ seq: 78, ack: sa.seq + 1, win: 100, payload: 5 }), 'data6').out!;
  assert.equal(d.ack, 10);
  assert.equal(d.win, 400, 'client window 100 << 2 for a backend that does not scale');
  const r = fx.run(b2s({ seq: 10, ack: 83, win: 6000 }), 'reply6').out!;
  assert.equal(r.seq, (sa.seq + 1) >>> 0);
  assert.equal(r.win, 46, '6000 >> 7: the client applies the shift weir announced');
});

test('syn_proxy on: bad cookies, stray packets and SYN floods open nothing, and are counted', () => {
  const fx = setup('on');
  const r = fx.run(c2v(40030, { seq: 1000, ack: 0x12345678 }), 'forged ACK');
  assert.deepEqual([r.verdict, r.reason], ['DROP', 'dropBadCookie']);
  assert.equal(fx.run(c2v(40030, { flags: RST, seq: 1000 }), 'stray RST').reason, 'dropBadCookie');
  // A valid cookie for another tuple, or from another key, does not pass.
  const sa = fx.run(c2v(40031, { flags: SYN, seq: 10 }), 'SYN').out!;
  assert.equal(fx.run(c2v(40032, { seq: 11, ack: sa.seq + 1 }), 'cookie of another port').reason, 'dropBadCookie');
  const other = setup('on', { cookieKey: [1, 2] });
  assert.equal(other.run(c2v(40031, { seq: 11, ack: sa.seq + 1 }), 'other key').reason, 'dropBadCookie');
  // Cookies expire: two slots of a minute are accepted, not more.
  assert.equal(fx.run(c2v(40031, { seq: 11, ack: sa.seq + 1 }), 'late', 1000 + 3 * 60_000).reason, 'dropBadCookie');
  assert.equal(fx.count('dropBadCookie'), 4);
  // A random-source flood: every SYN answered, no entry, no SNAT port.
  for (let i = 0; i < 2000; i++) {
    const src = `198.19.${(i >> 8) & 255}.${i & 255}`;
    const x = fx.run(seg({ src, dst: VIP4, sport: 1024 + i, dport: 80, flags: SYN, seq: i * 7919 }), 'flood');
    assert.equal(x.reason, 'txSynCookie');
  }
  assert.equal(fx.ct.size(), 0);
  assert.equal(fx.snat.counters[SNAT_PROPOSED], 0);
  assert.equal(fx.count('txSynCookie'), 2001);
  // The genuine client still gets through.
  assert.equal(fx.run(c2v(40031, { seq: 11, ack: sa.seq + 1 }), 'genuine').reason, 'txProxySyn');
});

test('syn_proxy on: a refused SYN resets the client; a silent backend gets the SYN again when the client resends', () => {
  const fx = setup('on');
  const vip = fx.specs.find((v) => v.name === 'nat4')!;
  const be = expectedBackend(vip, 6, CLIENT, VIP4, 40040, 80);
  const sa = fx.run(c2v(40040, { flags: SYN, seq: 500 }), 'SYN').out!;
  const first = fx.run(c2v(40040, { seq: 501, ack: sa.seq + 1 }), 'ACK', 1000).out!;
  assert.equal(first.flags, SYN);
  // The client resends its data after PROXY_RETRY_MS: the flow opens again (new SNAT port).
  const again = fx.run(
    c2v(40040, { seq: 501, ack: sa.seq + 1, flags: ACK | PSH, payload: 10 }),
    'resend',
    1000 + PROXY_RETRY_MS,
  );
  assert.equal(again.reason, 'txProxySyn');
  assert.equal(again.out!.seq, 500);
  const port = again.out!.sport;
  assert.equal(fx.ct.size(), 1, 'the first entry and its SNAT port were given back');
  // The backend refuses: the client gets a RST at its rcv.nxt (cookie + 1).
  const rst = fx.run(
    seg({ src: be.address, dst: SNAT4, sport: 8080, dport: port, flags: RST | ACK, seq: 0, ack: 501 }),
    'backend RST',
    2100,
  );
  assert.equal(rst.reason, 'txNatReply');
  const o = rst.out!;
  assert.deepEqual([o.src, o.dst, o.sport, o.dport, o.flags], [VIP4, CLIENT, 80, 40040, RST]);
  assert.equal(o.seq, (sa.seq + 1) >>> 0);
});

test('syn_proxy auto: plain nat while handshakes complete, cookies once unanswered SYNs pass the threshold, back below half, counted', () => {
  const fx = setup('auto', { synProxyRate: 20 });
  let now = 10_000;
  // Below the rate: plain nat (the SYN goes to the backend at once, an entry is made).
  const first = fx.run(c2v(41000, { flags: SYN, seq: 1 }), 'calm SYN', now);
  assert.equal(first.reason, 'txNat');
  assert.equal(first.out!.dst !== CLIENT, true);
  assert.equal(fx.engine.synProxyFlooding, false);
  // 60 SYNs whose handshakes never complete: past 20 half-open, cookies.
  const reasons: string[] = [];
  for (let i = 0; i < 60; i++) reasons.push(fx.run(c2v(41001 + i, { flags: SYN, seq: 1 }), 'burst', now).reason);
  assert.ok(
    reasons.slice(0, 18).every((r) => r === 'txNat'),
    reasons.join(),
  );
  assert.ok(
    reasons.slice(20).every((r) => r === 'txSynCookie'),
    reasons.join(),
  );
  assert.equal(fx.engine.synProxyFlooding, true);
  assert.equal(fx.count('synProxyAutoOn'), 1);
  const entries = fx.ct.size();
  // While flooding, stray ACKs are refused; a client with a valid cookie gets through.
  assert.equal(fx.run(c2v(42000, { seq: 5, ack: 77 }), 'stray', now).reason, 'dropBadCookie');
  const sa = fx.run(c2v(42001, { flags: SYN, seq: 5 }), 'flood SYN', now).out!;
  assert.equal(fx.run(c2v(42001, { seq: 6, ack: sa.seq + 1 }), 'proven', now + 100).reason, 'txProxySyn');
  assert.equal(fx.ct.size(), entries + 1);
  // The estimate is capped at the threshold (20), one handshake completed: ≈ 14 after 0.3 s, cookies.
  assert.equal(fx.run(c2v(42500, { flags: SYN, seq: 1 }), 'soon after', now + 300).reason, 'txSynCookie');
  // After 2.2 s it is far below half (≈ 15 · e^-1.9 ≈ 2): back to plain nat.
  now += 2200;
  assert.equal(fx.run(c2v(43000, { flags: SYN, seq: 1 }), 'calm again', now).reason, 'txNat');
  assert.equal(fx.engine.synProxyFlooding, false);
});

test('syn_proxy auto: busy legitimate traffic (100× the threshold per second, every handshake completing) stays plain nat', () => {
  const fx = setup('auto', { synProxyRate: 20 });
  for (let i = 0; i < 2000; i++) {
    const now = 20_000 + (i >> 1); // 2000 connections in one second
    const syn = fx.run(c2v(30000 + i, { flags: SYN, seq: 1 }), `SYN ${i}`, now);
    assert.equal(syn.reason, 'txNat', `connection ${i}`);
    const o = syn.out!;
    const sa = seg({ src: o.dst, dst: o.src, sport: o.dport, dport: o.sport, flags: SYN | ACK, seq: 900, ack: 2 });
    assert.equal(fx.run(sa, `SYN-ACK ${i}`, now).reason, 'txNatReply');
    assert.equal(fx.run(c2v(30000 + i, { seq: 2, ack: 901 }), `ACK ${i}`, now).reason, 'txNat');
  }
  assert.equal(fx.engine.synProxyFlooding, false);
  assert.equal(fx.count('synProxyAutoOn'), 0);
  assert.equal(fx.count('txSynCookie'), 0);
});

test('syn_proxy auto: a cookie answered after the flood still validates', () => {
  const fx = setup('auto', { synProxyRate: 2 });
  fx.run(c2v(44000, { flags: SYN, seq: 1 }), 'a', 0);
  fx.run(c2v(44001, { flags: SYN, seq: 1 }), 'b', 0);
  const sa = fx.run(c2v(44002, { flags: SYN, seq: 1 }), 'c', 0);
  assert.equal(sa.reason, 'txSynCookie');
  const later = fx.run(c2v(44002, { seq: 2, ack: sa.out!.seq + 1 }), 'ACK after the flood', 5000);
  assert.equal(fx.engine.synProxyFlooding, false);
  assert.equal(later.reason, 'txProxySyn');
});

function ipWord(s: string): number {
  const b = ipb(s);
  return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
}

// Runs last: every segment weir built or translated above, through tshark's checksum checks.
test('tshark finds every checksum of the SYN proxy outputs good', { skip: tsharkMissing }, () => {
  assert.ok(judged.length > 20, `${judged.length} outputs`);
  tsharkFields(
    LINKTYPE_RAW,
    judged.map((j) => j.bytes),
    ['ip.checksum.status', 'tcp.checksum.status', '_ws.malformed'],
  ).forEach((f, i) => {
    const ipst = f['ip.checksum.status'];
    assert.ok(ipst === '' || ipst === '1', `IPv4 checksum of ${judged[i].name}: ${JSON.stringify(f)}`);
    assert.equal(f['tcp.checksum.status'], '1', `TCP checksum of ${judged[i].name}: ${JSON.stringify(f)}`);
    assert.equal(f['_ws.malformed'], '', `malformed: ${judged[i].name}`);
  });
});
