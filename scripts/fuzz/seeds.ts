// Seed packets of the fuzzer: the packet fixtures of the unit tests (test/fixtures/packet), the
// committed fuzz corpus (test/fixtures/fuzz), and any pcap captures given on the command line.
// Each seed is a bare IP packet; the traffic generator frames it and may aim it at a VIP.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import {
  buildPacket,
  GRE_CSUM,
  GRE_KEY,
  GRE_SEQ,
  IPPROTO_DSTOPTS,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  readPcap,
  TCP_ACK,
  TCP_FIN,
  TCP_SYN,
} from '../../src/packet/index.js';
import * as P from '../../test/fixtures/packet/packets.js';
import type { Repro } from './harness.js';
import { ipOfFrame } from './traffic.js';

/** Every kind of packet test/fixtures/packet/packets.ts makes, and a few variations of each. */
export function fixtureSeeds(): Uint8Array[] {
  const inner6 = P.tcp6();
  return [
    P.tcp4(),
    P.tcp4({ tcpFlags: TCP_ACK, payload: 0 }),
    P.tcp4({ tcpFlags: TCP_FIN | TCP_ACK }),
    P.tcp4({ ipv4Options: Uint8Array.of(1, 1, 1, 0) }),
    P.udp4(),
    P.udp4({ udpZeroChecksum: true }),
    P.udp4({ fragment: { offset: 0, more: true } }),
    P.udp4({ fragment: { offset: 64, more: false } }),
    P.icmp4(),
    P.icmp4({ icmpType: 3, icmpCode: 4, icmpSeq: 1400, payload: P.tcp4().subarray(0, 28) }),
    P.icmp4({ icmpType: 11, payload: P.udp4() }),
    P.tcp6(),
    P.tcp6({ tcpFlags: TCP_SYN }),
    P.udp6(),
    P.udp6({ fragment: { offset: 0, more: true } }),
    P.icmp6(),
    P.icmp6({ icmpType: 2, icmpId: 0, icmpSeq: 1280, payload: inner6 }),
    P.icmp6({ icmpType: 1, icmpCode: 4, payload: P.udp6().subarray(0, 48) }),
    P.tcp6Ext(),
    P.tcp6({ ipv6Ext: [[IPPROTO_DSTOPTS, new Uint8Array(14)]] }),
    P.gre4(),
    P.gre4(P.tcp6()),
    P.gre4(P.udp4(), 0x01020304),
    P.greWithHeader(P.GRE_PLAIN),
    P.greWithHeader([(GRE_CSUM | GRE_KEY | GRE_SEQ) >> 8, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]),
    P.greWithHeader([0x40, 0, 0x08, 0x00]),
    P.greWithHeader([0, 1, 0x08, 0x00]),
    P.cutIp(P.tcp4(), 30),
    P.cutIp(P.tcp6(), 50),
    P.cutIp(P.udp4(), 24),
    P.mutate(P.tcp4(), (c) => {
      c[0] = 0x4f;
    }),
    P.mutate(P.tcp4(), (c) => {
      c[32] = 0xf0;
    }),
    buildPacket({ src: P.V4A, dst: P.V4B, proto: 'tcp', tcpFlags: 0xff, payload: 3 }),
  ];
}

/** Bare IP packets of every readable pcap (Ethernet or raw IP link type). Throws naming the file it cannot read. */
export function pcapSeeds(files: readonly string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of files) {
    let cap;
    try {
      cap = readPcap(readFileSync(f));
    } catch (e) {
      throw new Error(`${f}: ${(e as Error).message}`, { cause: e });
    }
    const lt = cap.linkType === LINKTYPE_ETHERNET ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
    for (const r of cap.records) {
      const ip = ipOfFrame(r.data, lt);
      if (ip) out.push(ip);
    }
  }
  return out;
}

/** The fuzz corpus files of a folder (sorted by name). */
export function corpusFiles(dir: string): Array<{ name: string; repro: Repro }> {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()
    .map((name) => ({
      name,
      repro: JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as Repro,
    }));
}

/** The packets of the corpus as bare IP packets. */
export function corpusSeeds(dir: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const { repro } of corpusFiles(dir)) {
    const lt = repro.world.link === 'eth' ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
    for (const b of repro.batches)
      for (const p of b.packets) {
        const ip = ipOfFrame(new Uint8Array(Buffer.from(p.hex, 'hex')), lt);
        if (ip) out.push(ip);
      }
  }
  return out;
}
