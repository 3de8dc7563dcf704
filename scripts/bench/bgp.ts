// `npm run bench -- bgp`: BGP codec throughput — encoding the UPDATEs weir sends for a VIP,
// decoding what routers send, and framing a stream. Control plane: these figures say how many
// VIP changes per second the codec could carry, far above what a routing table needs.
import { Bench } from 'tinybench';
import {
  BgpFramer,
  decodeMessage,
  encodeKeepalive,
  encodeUpdate,
  parseCommunity,
  type UpdateInput,
} from '../../src/bgp/message.js';

const v4: UpdateInput = {
  attrs: {
    origin: 0,
    asPath: [{ type: 2, asns: [4200000001] }],
    nextHop: '198.18.100.2',
    med: 50,
    communities: [parseCommunity('65000:100')],
    largeCommunities: [[4200000001, 1, 2]],
  },
  nlri: ['198.18.250.1/32'],
};
const v6: UpdateInput = {
  attrs: {
    origin: 0,
    asPath: [{ type: 2, asns: [4200000001] }],
    med: 60,
    mpReach: { afi: 2, safi: 1, nextHops: ['fd00:18:100::2'], nlri: ['fd00:250::1/128'] },
  },
};
// Captured from BIRD 2.0.12 (test/fixtures/bgp/bird-update-ipv6-linklocal.hex).
const birdV6 = Uint8Array.from(
  Buffer.from(
    'ffffffffffffffffffffffffffffffff0056020000003f900e002e00020120fd000018010000000000000000000001fe800000000000008814e1fffeea6c870040fd000201000000004001010040020602010000fde8',
    'hex',
  ),
);
const v4Bytes = encodeUpdate(v4, { fourOctetAs: true });
const stream = Buffer.concat(Array.from({ length: 64 }, (_, i) => (i % 2 ? encodeKeepalive() : v4Bytes)));

export async function run(): Promise<void> {
  const bench = new Bench({ time: 500 });
  bench
    .add('encode IPv4 VIP UPDATE (/32, MED, communities, large)', () => void encodeUpdate(v4, { fourOctetAs: true }))
    .add('encode IPv6 VIP UPDATE (/128, MP_REACH)', () => void encodeUpdate(v6, { fourOctetAs: true }))
    .add('decode IPv4 VIP UPDATE', () => void decodeMessage(v4Bytes, { fourOctetAs: true }))
    .add('decode BIRD IPv6 UPDATE (captured)', () => void decodeMessage(birdV6, { fourOctetAs: true }))
    .add('frame 64 messages from one 2.4 KB chunk', () => void new BgpFramer().push(stream));
  await bench.run();
  console.table(
    bench.tasks.map((t) => {
      const r = t.result as unknown as
        | { throughput?: { mean: number }; latency?: { p50?: number; mean: number }; hz?: number; p50?: number }
        | undefined;
      const hz = r?.throughput?.mean ?? r?.hz ?? 0;
      const p50Ms = r?.latency?.p50 ?? r?.p50 ?? 0;
      return { task: t.name, 'ops/s': Math.round(hz).toLocaleString('en-US'), 'median µs': (p50Ms * 1000).toFixed(2) };
    }),
  );
}
