// Test-only minimal dsr-gre encapsulator for the decap lab test, run inside the lb namespace:
// an AF_PACKET socket on the client-facing veth takes frames to the VIPs (the nftables netdev
// hook drops them before the lb's kernel routes them), wraps each in GRE to the backend with
// IPv4 or IPv6 outer as configured per VIP, and sends it with a raw IP socket.
// argv[2]: JSON { ifname, tunnels: { [vip]: { src, dst } } }. Prints "ready" once listening and,
// on SIGTERM, one JSON line of counters.
import {
  encapGre,
  fillL4Checksum,
  formatIp,
  GreTunnel,
  LINKTYPE_ETHERNET,
  PacketInfo,
  parseIp,
  parsePacket,
} from '../../src/packet/index.js';
import {
  AfPacketPort,
  PacketBatch,
  RawIpSender,
  TP_STATUS_CSUMNOTREADY,
  TP_STATUS_GSO_TCP,
  WEIR_F_TX_ERROR,
} from '../../src/io/index.js';

interface ChildConfig {
  ifname: string;
  tunnels: Record<string, { src: string; dst: string }>;
}

const cfg = JSON.parse(process.argv[2]) as ChildConfig;
const tunnels = new Map<string, GreTunnel>();
for (const [vip, t] of Object.entries(cfg.tunnels)) tunnels.set(vip, new GreTunnel(parseIp(t.src)!, parseIp(t.dst)!));

const port = new AfPacketPort(cfg.ifname, { ignoreOutgoing: true, retireTimeoutMs: 1 });
const tx4 = new RawIpSender(4);
const tx6 = new RawIpSender(6);
const rx = new PacketBatch({ slots: 64, slotSize: 4096 });
const out4 = new PacketBatch({ slots: 64, slotSize: 4096 });
const out6 = new PacketBatch({ slots: 64, slotSize: 4096 });
const info = new PacketInfo();
const counts = { encapsulated4: 0, encapsulated6: 0, ignored: 0, gso: 0, sendErrors: 0 };

function drain(): void {
  for (;;) {
    const n = port.recv(rx, 0);
    if (n === 0) return;
    let k4 = 0;
    let k6 = 0;
    for (let i = 0; i < n; i++) {
      const start = rx.start(i);
      if (parsePacket(rx.data, start, rx.length(i), LINKTYPE_ETHERNET, info) < 0) {
        counts.ignored++;
        continue;
      }
      const tun = tunnels.get(formatIp(rx.data, info.dstAddrOff, info.addrLen));
      if (!tun) {
        counts.ignored++;
        continue;
      }
      if ((rx.flags(i) & TP_STATUS_GSO_TCP) !== 0) {
        counts.gso++;
        continue;
      }
      // veth offload leaves only the pseudo-header sum: finish it, as a real encapsulator must.
      if ((rx.flags(i) & TP_STATUS_CSUMNOTREADY) !== 0) fillL4Checksum(rx.data, info);
      const innerLen = info.l3End - info.l3Off;
      const out = tun.outerVersion === 4 ? out4 : out6;
      const j = tun.outerVersion === 4 ? k4++ : k6++;
      const len = encapGre(out.data, j * out.slotSize, (j + 1) * out.slotSize, rx.data, info.l3Off, innerLen, tun);
      if (len < 0) {
        counts.sendErrors++;
        if (tun.outerVersion === 4) k4--;
        else k6--;
        continue;
      }
      out.setPacket(j, 0, len);
    }
    if (k4 > 0) counts.encapsulated4 += sendAll(tx4, out4, k4);
    if (k6 > 0) counts.encapsulated6 += sendAll(tx6, out6, k6);
  }
}

/** Sends slots 0..k-1; returns how many went out, counting refused and unsent ones as errors. */
function sendAll(tx: RawIpSender, b: PacketBatch, k: number): number {
  const s = tx.send(b, k);
  let ok = 0;
  for (let i = 0; i < s; i++) if ((b.flags(i) & WEIR_F_TX_ERROR) === 0) ok++;
  counts.sendErrors += k - ok;
  return ok;
}

port.onReadable(drain);
process.on('SIGTERM', () => {
  port.onReadable(null);
  port.close();
  tx4.close();
  tx6.close();
  process.stdout.write(JSON.stringify(counts) + '\n', () => process.exit(0));
});
process.stdout.write('ready\n');
