// The weir config of each lab instance, generated from topology.ts at `lab up`: the lab VIPs,
// be1..3 as backends (MACs read from their fabric veths for dsr-l2), the lb's own fabric
// addresses as SNAT / GRE source, and a control socket under /run/weir-lab.
import YAML from 'yaml';
import {
  BACKEND_WEIGHTS,
  LAB_HASH_SEED,
  VIPS,
  backendSideLink,
  hostsByRole,
  type LabHost,
  type LabShape,
} from './topology.js';

export interface LabWeirFiles {
  config: string;
  socket: string;
  metrics: string;
  log: string;
}

/**
 * The health check `lab up --health` gives the HTTP VIPs: GET /health on every backend (the lab
 * backend answers 500 after SIGUSR1), short intervals so lab tests see transitions quickly, and
 * flap damping off so one test file can take a backend down and up several times.
 */
export const LAB_HEALTH_CHECK = {
  type: 'http',
  path: '/health',
  interval_ms: 300,
  timeout_ms: 200,
  jitter_ms: 30,
  rise: 2,
  fall: 2,
  damping: { enabled: false },
} as const;

/**
 * `lab up --health=passive`: the same check with probes 8 s apart and fall 3, so a test sees the
 * data path's passive signals (5 failed connections in nat mode) decide before the probes could:
 * a regular probe and the one a suspect backend gets at once can fail within a second, the third
 * comes an interval later.
 */
export const LAB_PASSIVE_HEALTH_CHECK = {
  ...LAB_HEALTH_CHECK,
  interval_ms: 8000,
  timeout_ms: 500,
  rise: 1,
  fall: 3,
  passive_suspect_after: 1,
  passive_down_after: 5,
} as const;

/** The VIPs whose backends `lab up --health` probes through the tunnel (dsr-gre, IPv4 and IPv6). */
export const LAB_TUNNEL_VIP = 'web-gre';
export const LAB_TUNNEL_VIP6 = 'web6-gre';

/**
 * The address lb probes `backend` from through the tunnel: one per (lb, backend, family), on
 * the lb's fabric interface (lab up --health adds them), e.g. weir-lb1 → be2: 198.18.1.112 and
 * fd00:0:0:1::112.
 */
export function labProbeSource(lbNs: string, backendNs: string, family: 4 | 6 = 4): string {
  const lb = Number(lbNs.replace(/^weir-lb/, ''));
  const be = Number(backendNs.replace(/^weir-be/, ''));
  return family === 4 ? `198.18.1.${100 + lb * 10 + be}` : `fd00:0:0:1::${100 + lb * 10 + be}`;
}

export type LabIo = 'afpacket' | 'afxdp' | 'tun';

export interface LabConfigOptions {
  /** Real HTTP health checks (LAB_HEALTH_CHECK, or LAB_PASSIVE_HEALTH_CHECK for 'passive') on the HTTP VIPs; default every VIP has type none. */
  health?: boolean | 'passive';
  /** instance.io; with tun the dsr-l2 VIPs are left out and the SNAT / GRE source is labTunAddress. */
  io?: LabIo;
  /** two-armed: weir attaches to the uplink and the backend side; SNAT / GRE source on the backend side. */
  shape?: LabShape;
}

/**
 * `lab up --io=tun`: lb N's SNAT and GRE source addresses, 198.18.3.N and fd00:0:0:3::N. They
 * are assigned to no host: the backends route them to lb N, whose kernel routes them into the TUN.
 */
export function labTunAddress(lbNs: string, family: 4 | 6): string {
  const lb = Number(lbNs.replace(/^weir-lb/, ''));
  return family === 4 ? `198.18.3.${lb}` : `fd00:0:0:3::${lb}`;
}

export function weirFiles(stateDir: string, lb: LabHost): LabWeirFiles {
  const short = lb.ns.replace(/^weir-/, '');
  return {
    config: `${stateDir}/weir-${short}.yaml`,
    socket: `${stateDir}/${short}.sock`,
    // Each instance has its own namespace, so each has its own 127.0.0.1.
    metrics: '127.0.0.1:9473',
    log: `${stateDir}/weir-${short}.log`,
  };
}

/** YAML text of lb's config. `macs` maps backend namespace → MAC of its fabric interface. */
export function labWeirConfig(
  lb: LabHost,
  files: LabWeirFiles,
  macs: Record<string, string>,
  workers = 1,
  opts: LabConfigOptions = {},
): string {
  const link = backendSideLink(lb);
  const backends = hostsByRole('backend', opts.shape);
  const hc = opts.health === 'passive' ? LAB_PASSIVE_HEALTH_CHECK : LAB_HEALTH_CHECK;
  const tun = opts.io === 'tun';
  const cfg = {
    instance: {
      name: lb.ns.replace(/^weir-/, ''),
      addresses: tun ? [labTunAddress(lb.ns, 4), labTunAddress(lb.ns, 6)] : [link.v4, link.v6],
      // With a TUN the interfaces only give the MTU.
      interfaces: lb.links.map((l) => l.ifname),
      io: opts.io ?? 'afpacket',
      workers,
    },
    cluster: { hash_seed: LAB_HASH_SEED },
    control: { socket: files.socket },
    metrics: { listen: files.metrics },
    conntrack: { capacity: 65536 },
    vips: VIPS.filter((v) => !(tun && v.mode === 'dsr-l2')).map((v) => {
      const six = v.address.includes(':');
      return {
        name: v.name,
        address: v.address,
        port: v.port,
        protocol: v.protocol,
        mode: v.mode,
        table_size: 4099,
        ...(v.hashFields ? { hash_fields: v.hashFields } : {}),
        health_check:
          opts.health && v.protocol === 'tcp' && v.port === 80
            ? // copies: YAML would alias a shared object
              {
                ...hc,
                damping: { ...hc.damping },
                ...(v.name === LAB_TUNNEL_VIP || v.name === LAB_TUNNEL_VIP6 ? { via: 'tunnel' } : {}),
              }
            : { type: 'none' },
        backends: backends.map((b) => {
          const name = b.ns.replace(/^weir-/, '');
          return {
            name,
            address: six ? b.links[0].v6! : b.links[0].v4!,
            weight: BACKEND_WEIGHTS[name] ?? 100,
            ...(v.mode === 'dsr-l2' ? { mac: macs[b.ns] } : {}),
            ...(opts.health && (v.name === LAB_TUNNEL_VIP || v.name === LAB_TUNNEL_VIP6)
              ? { health_check: { source_address: labProbeSource(lb.ns, b.ns, six ? 6 : 4) } }
              : {}),
          };
        }),
      };
    }),
  };
  return `# Generated by netns-lab at lab up for ${lb.ns}; do not edit (lab up rewrites it).\n${YAML.stringify(cfg)}`;
}
