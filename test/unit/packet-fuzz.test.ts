// Fuzz: a million random and mutated buffers (bit flips, byte noise, truncation, corrupted
// length fields) through every parser. Nothing may throw, no returned offset may pass the
// declared end, and nothing may be read past it: each input is parsed twice, once followed by
// 0x00 bytes and once by 0xff bytes, and every result field must agree. Deterministic PRNG;
// set WEIR_FUZZ_SEED to replay another stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PacketInfo,
  parsePacket,
  parseEthernet,
  parseIpv4,
  parseIpv6,
  parseTcp,
  parseUdp,
  parseIcmp,
  parseIcmpv6,
  parseGre,
  rewriteDstAddr,
  rewriteSrcPort,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  IPPROTO_HOPOPTS,
  IPPROTO_DSTOPTS,
  parseIcmpQuote,
  isIcmpError,
  buildIcmpFragNeeded,
  buildIcmpv6PacketTooBig,
} from '../../src/packet/index.js';
import {
  tcp4,
  udp4,
  icmp4,
  tcp6,
  udp6,
  icmp6,
  tcp6Ext,
  gre4,
  greWithHeader,
  eth,
  ip,
} from '../fixtures/packet/packets.js';

const SEED = Number(process.env.WEIR_FUZZ_SEED ?? 0x5eed1234) >>> 0;
const TOTAL = 1_000_000;
const TAIL = 64;

// xorshift32: fast, deterministic.
let state = SEED || 1;
function rnd(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}
const below = (n: number): number => rnd() % n;

function seeds(): Uint8Array[] {
  const ip4 = [
    tcp4(),
    udp4(),
    icmp4(),
    tcp4({ ipv4Options: new Uint8Array([7, 7, 4, 0, 0, 0, 0]) }),
    tcp4({ fragment: { offset: 0, more: true } }),
    udp4({ fragment: { offset: 64, more: false } }),
    gre4(),
    gre4(tcp6(), 5),
    greWithHeader([0xb0, 0, 0x86, 0xdd, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], tcp6()),
  ];
  const ip6 = [
    tcp6(),
    udp6(),
    icmp6(),
    tcp6Ext(),
    udp6({ fragment: { offset: 0, more: true } }),
    tcp6({
      ipv6Ext: [
        [IPPROTO_HOPOPTS, new Uint8Array(14)],
        [IPPROTO_DSTOPTS, new Uint8Array(6)],
      ],
      fragment: { offset: 8, more: true },
    }),
  ];
  const errs = [tcp4(), udp4({ payload: 600 })].map((o) => {
    const b = new Uint8Array(600);
    return b.slice(0, buildIcmpFragNeeded(b, 0, 600, o, 0, o.length, 1400, ip('198.18.0.1'), 0));
  });
  errs.push(
    ...[tcp6(), udp6()].map((o) => {
      const b = new Uint8Array(1280);
      return b.slice(0, buildIcmpv6PacketTooBig(b, 0, 1280, o, 0, o.length, 1280, ip('fd00::1'), 0));
    }),
  );
  const all = [...ip4, ...ip6, ...errs];
  return [...all, ...all.map((p) => eth(p)), ...all.map((p) => eth(p, undefined, 100))];
}

// Offsets of length-ish fields worth corrupting, for a raw IP packet starting at l3.
function lengthFields(p: Uint8Array, l3: number): number[] {
  const v = p[l3] >> 4;
  const out = [l3, l3 + 2, l3 + 3, l3 + 4, l3 + 5, l3 + 6];
  if (v === 4) {
    const l4 = l3 + ((p[l3] & 15) << 2);
    out.push(l4 + 4, l4 + 5, l4 + 12, l4, l4 + 1, l3 + 9, l3 + 20, l3 + 21);
  } else {
    out.push(l3 + 41, l3 + 40, l3 + 49, l3 + 44, l3 + 45, l3 + 52);
  }
  return out;
}

/** PacketInfo's data fields: its own keys, not its methods. */
type InfoField = Exclude<keyof PacketInfo, 'reset' | 'resetL4'>;
const KEYS = Object.keys(new PacketInfo()) as InfoField[];
function sameInfo(a: PacketInfo, b: PacketInfo): string | undefined {
  for (const k of KEYS) if (a[k] !== b[k]) return `${k}: ${String(a[k])} vs ${String(b[k])}`;
  return undefined;
}

type Parser = (buf: Uint8Array, off: number, end: number, out: PacketInfo) => number;
const PARSERS: Array<[string, Parser]> = [
  ['parsePacket/ethernet', (b, o, e, i) => parsePacket(b, o, e - o, LINKTYPE_ETHERNET, i)],
  ['parsePacket/raw', (b, o, e, i) => parsePacket(b, o, e - o, LINKTYPE_RAW, i)],
  ['parseEthernet', parseEthernet],
  ['parseIpv4', parseIpv4],
  ['parseIpv6', parseIpv6],
  ['parseTcp', parseTcp],
  ['parseUdp', parseUdp],
  ['parseIcmp', parseIcmp],
  ['parseIcmpv6', parseIcmpv6],
  ['parseGre', parseGre],
];

test('a million random and mutated buffers never make a parser throw or read past the end', () => {
  const base = seeds();
  assert.ok(base.length >= 50);
  const bufA = new Uint8Array(4096 + TAIL);
  const bufB = new Uint8Array(4096 + TAIL);
  const infoA = new PacketInfo();
  const infoB = new PacketInfo();
  const work = new Uint8Array(4096);
  const newAddr4 = ip('198.18.77.77');
  const newAddr6 = ip('fd00::77');
  const quoteA = new PacketInfo();
  const quoteB = new PacketInfo();
  const stats = { parsedOk: 0, errors: 0, rewrites: 0, quotes: 0 };
  const perParser = new Map<string, number>(PARSERS.map(([n]) => [n, 0]));
  for (let iter = 0; iter < TOTAL; iter++) {
    // 1. make an input in `work`
    let len: number;
    const kind = below(10);
    if (kind === 0) {
      // pure noise, sometimes with a plausible first byte
      len = below(200);
      for (let i = 0; i < len; i++) work[i] = rnd() & 0xff;
      if (len > 0 && below(2) === 0) work[0] = below(2) ? 0x45 : 0x60;
    } else {
      const s = base[below(base.length)];
      len = s.length;
      work.set(s);
      const l3 = s[0] >> 4 === 4 || s[0] >> 4 === 6 ? 0 : s[12] === 0x81 ? 18 : 14;
      const muts = 1 + below(3);
      for (let m = 0; m < muts; m++) {
        const what = below(5);
        if (len === 0) break;
        if (what === 0) {
          const bit = below(len * 8);
          work[bit >> 3] ^= 1 << (bit & 7);
        } // bit flip
        else if (what === 1)
          work[below(len)] = rnd() & 0xff; // byte noise
        else if (what === 2)
          len = below(len + 1); // truncation
        else if (what === 3) {
          // length-field corruption
          const f = lengthFields(work, l3);
          const at = f[below(f.length)];
          const pick = below(5);
          if (at < len)
            work[at] =
              pick === 0
                ? 0
                : pick === 1
                  ? 0xff
                  : pick === 2
                    ? below(16)
                    : pick === 3
                      ? (work[at] + 1 + below(8)) & 0xff
                      : (work[at] - 1 - below(8)) & 0xff;
        } else if (len > l3 + 6) {
          // consistent truncation: cut, and make the IP length say so
          len = l3 + 6 + below(len - l3 - 5);
          const ipLen = len - l3 - (work[l3] >> 4 === 6 ? 40 : 0);
          if (ipLen >= 0) {
            work[l3 + (work[l3] >> 4 === 6 ? 4 : 2)] = (ipLen >> 8) & 0xff;
            work[l3 + (work[l3] >> 4 === 6 ? 5 : 3)] = ipLen & 0xff;
          }
        }
      }
    }
    // 2. two copies with different bytes past the end
    bufA.set(work.subarray(0, len));
    bufB.set(work.subarray(0, len));
    bufA.fill(0x00, len, len + TAIL);
    bufB.fill(0xff, len, len + TAIL);
    // 3. one parser per input, round robin (parsePacket gets two turns in ten, at both link types)
    const [name, parse] = PARSERS[iter % PARSERS.length];
    perParser.set(name, perParser.get(name)! + 1);
    infoA.reset();
    infoB.reset();
    let ra: number, rb: number;
    try {
      ra = parse(bufA, 0, len, infoA);
      rb = parse(bufB, 0, len, infoB);
    } catch (e) {
      assert.fail(`${name} threw ${String(e)} on ${Buffer.from(work.subarray(0, len)).toString('hex')}`);
    }
    if (ra !== rb || sameInfo(infoA, infoB) !== undefined) {
      assert.fail(
        `${name} read past the end (${ra} vs ${rb}, ${sameInfo(infoA, infoB)}) on ${Buffer.from(work.subarray(0, len)).toString('hex')}`,
      );
    }
    assert.ok(ra <= len, `${name} returned offset ${ra} past length ${len}`);
    if (ra >= 0) {
      stats.parsedOk++;
      for (const k of ['l3End', 'l4Off', 'payloadOff', 'srcAddrOff', 'dstAddrOff'] as const) {
        assert.ok(infoA[k] <= len, `${name}: ${k} ${infoA[k]} past length ${len}`);
      }
      // The quote inside an ICMP error, the same way.
      if (name.startsWith('parsePacket') && isIcmpError(infoA)) {
        const qa = parseIcmpQuote(bufA, infoA, quoteA);
        const qb = parseIcmpQuote(bufB, infoB, quoteB);
        if (qa !== qb || sameInfo(quoteA, quoteB) !== undefined) {
          assert.fail(
            `parseIcmpQuote read past the end (${qa} vs ${qb}, ${sameInfo(quoteA, quoteB)}) on ${Buffer.from(work.subarray(0, len)).toString('hex')}`,
          );
        }
        assert.ok(qa <= len && quoteA.l3End <= len);
        stats.quotes++;
      }
      // A rewrite of what parsed must stay inside the packet too.
      if (name.startsWith('parsePacket') && infoA.ipVersion !== 0) {
        const a = infoA.addrLen === 4 ? newAddr4 : newAddr6;
        rewriteDstAddr(bufA, infoA, a, 0, a.length);
        rewriteSrcPort(bufA, infoA, 1234);
        for (let i = len; i < len + TAIL; i++)
          if (bufA[i] !== 0)
            assert.fail(`rewrite wrote past the end on ${Buffer.from(work.subarray(0, len)).toString('hex')}`);
        stats.rewrites++;
      }
    } else {
      stats.errors++;
    }
  }
  // The fuzzer reached both outcomes and every parser.
  assert.ok(
    stats.parsedOk > TOTAL / 20 && stats.errors > TOTAL / 20 && stats.rewrites > 1000 && stats.quotes > 1000,
    JSON.stringify(stats),
  );
  for (const [n, c] of perParser) assert.ok(c >= TOTAL / PARSERS.length - 1, `${n} ran ${c} times`);
});
