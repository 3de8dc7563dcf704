// `npm run bench -- decap`: ns/packet for the userspace GRE decapsulator (validate outer IP +
// GRE, parse the inner packet, check its VIP, move it into place) on batches of 64 packets:
// IPv4 and IPv6 inner, IPv4 and IPv6 outer, TCP 64/576/1400 B. No I/O (the TUN write and
// recvmmsg are the kernel's share and are not measured here).
import { Bench } from 'tinybench';
import { buildPacket, encapGre, GreTunnel, parseIp } from '../../src/packet/index.js';
import { PacketBatch } from '../../src/io/index.js';
import { Decapsulator } from '../../src/decap/index.js';

const N = 64; // packets per batch = one tinybench iteration
const VIPS = ['198.18.150.1', 'fd00:150::1'];

function fill(batch: PacketBatch, rejectEvery: number): void {
  const t4 = new GreTunnel(parseIp('198.18.51.1')!, parseIp('198.18.51.2')!);
  const t6 = new GreTunnel(parseIp('fd00:51::1')!, parseIp('fd00:51::2')!);
  const sizes = [64, 576, 1400];
  for (let i = 0; i < N; i++) {
    const six = i % 4 >= 2;
    const bad = rejectEvery > 0 && i % rejectEvery === rejectEvery - 1;
    const inner = buildPacket({
      src: six ? `fd00:50::${i + 1}` : `198.18.50.${i + 1}`,
      dst: bad ? (six ? 'fd00:150::9' : '198.18.150.9') : six ? VIPS[1] : VIPS[0],
      proto: 'tcp',
      srcPort: 1024 + i,
      dstPort: 80,
      payload: Math.max(0, sizes[i % 3] - (six ? 60 : 40)),
    });
    const tun = i % 2 === 0 ? t4 : t6;
    const o = i * batch.slotSize;
    const len = encapGre(batch.data, o, o + batch.slotSize, inner, 0, inner.length, tun);
    if (len < 0) throw new Error(`bench: encap failed (${len})`);
    batch.setPacket(i, 0, len);
  }
}

export async function run(): Promise<void> {
  const d = new Decapsulator({ vips: VIPS, locals: ['198.18.51.2', 'fd00:51::2'] });
  const all = new PacketBatch({ slots: N });
  fill(all, 0);
  const allMeta = all.meta.slice();
  const some = new PacketBatch({ slots: N });
  fill(some, 4);
  const someData = some.data.slice();
  const someMeta = some.meta.slice();
  let sink = 0;
  const bench = new Bench({ time: 400, warmup: true });
  bench
    .add('decap, all accepted (no copy)', () => {
      all.meta.set(allMeta);
      sink += d.process(all, N);
    })
    .add('restore of a batch (baseline for the next row)', () => {
      some.data.set(someData);
      some.meta.set(someMeta);
      sink += some.meta[0];
    })
    .add('decap, 1 in 4 rejected (later ones moved up) + restore', () => {
      some.data.set(someData);
      some.meta.set(someMeta);
      sink += d.process(some, N);
    });
  await bench.run();
  if (d.counters[1] === 0) throw new Error('bench: nothing was decapsulated');
  const rows = bench.tasks.map((t) => {
    const r = t.result;
    if (r.state !== 'completed') return { task: t.name, 'ns/packet (median)': `(${r.state})` };
    return {
      task: t.name,
      'ns/packet (median)': ((r.latency.p50 * 1e6) / N).toFixed(1),
      'p99 ns/packet': ((r.latency.p99 * 1e6) / N).toFixed(1),
      'Mpps at median': (1e3 / ((r.latency.p50 * 1e6) / N)).toFixed(2),
      batches: r.latency.samplesCount,
    };
  });
  console.log(`one batch of ${N} = one sample; mix: IPv4/IPv6 inner x IPv4/IPv6 outer, TCP 64/576/1400 B`);
  console.table(rows);
  if (sink === 0.5) console.log('unreachable');
}
