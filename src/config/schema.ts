// The weir YAML schema (zod): field types, ranges and defaults. Cross-field rules live in checks.ts.
// Every leaf carries one "must be …" sentence so a config error reads the same wherever it occurs;
// schema/weir.schema.json is generated from this file (scripts/gen-schema.ts).
import { parseIp } from '../packet/ip-text.js';
import { z } from 'zod';
import { DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE, MAX_WEIGHT } from '../lb/maglev.js';
import { DEFAULT_TIMEOUTS, MAX_CAPACITY } from '../lb/conntrack.js';
import { DEFAULT_SYN_PROXY_RATE } from '../lb/vip-table.js';

/** instance.syn_proxy_threshold default: nat TCP handshakes left half-open (≈ unanswered SYNs per second) for the whole instance. */
export const DEFAULT_SYN_PROXY_THRESHOLD = DEFAULT_SYN_PROXY_RATE;
import { DEFAULT_CONTROL_SOCKET } from './defaults.js';

/** Seconds a connection entry lives in each state unless traffic refreshes it (the table's own defaults). */
export const DEFAULT_CT_TIMEOUTS = {
  syn_sent: DEFAULT_TIMEOUTS.synSent,
  syn_recv: DEFAULT_TIMEOUTS.synRecv,
  established: DEFAULT_TIMEOUTS.established,
  fin_wait: DEFAULT_TIMEOUTS.finWait,
  close_wait: DEFAULT_TIMEOUTS.closeWait,
  time_wait: DEFAULT_TIMEOUTS.timeWait,
  close: DEFAULT_TIMEOUTS.close,
  udp: DEFAULT_TIMEOUTS.udp,
  udp_unreplied: DEFAULT_TIMEOUTS.udpUnreplied,
  udp_replied: DEFAULT_TIMEOUTS.udpReplied,
  icmp: DEFAULT_TIMEOUTS.icmp,
} as const;

export const DEFAULTS = {
  instanceName: 'weir',
  io: 'afpacket',
  workers: 'auto',
  busyPollUs: 0,
  hashSeed: 'weir',
  weight: 100,
  ctCapacity: 1_048_576,
  metricsListen: '127.0.0.1:9473',
  controlSocket: DEFAULT_CONTROL_SOCKET,
  bgpHoldTime: 90,
  bgpPort: 179,
  bgpShutdownWaitMs: 2000,
  bfdIntervalMs: 300,
  bfdMultiplier: 3,
  grRestartTime: 30,
  snatPortMin: 10240,
  snatPortMax: 32767,
} as const;

/** Error function: "is required" when the key is absent, the field's own sentence otherwise. */
function says(text: string) {
  return (iss: { input?: unknown }) => (iss.input === undefined ? 'is required' : text);
}

function int(lo: number, hi: number, what?: string) {
  const e = says(what ?? `must be an integer ${lo}..${hi}`);
  return z.number({ error: e }).int({ error: e }).min(lo, { error: e }).max(hi, { error: e });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: says(`must be one of ${values.join(', ')}`) });
}

function str(what: string, re?: RegExp, maxLen = 255) {
  const e = says(what);
  let s = z.string({ error: e }).min(1, { error: e }).max(maxLen, { error: e });
  if (re) s = s.regex(re, { error: e });
  return s;
}

/** A map with a fixed set of keys; anything else is an "unknown key" error. */
function map<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, { error: says('must be a map of settings (key: value)') });
}

/** A plain IPv4 or IPv6 literal (no prefix length, no zone id). */
export const ipAddress = z
  .string({ error: says('must be an IPv4 or IPv6 address') })
  .refine((s) => parseIp(s) !== undefined, { error: 'must be an IPv4 or IPv6 address' })
  .meta({ anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] });

const port = int(1, 65535, 'must be a port number 1..65535');
const PORT_OR_ALL = 'must be a port number 1..65535 or "all"';
const seconds = () => int(1, 2_000_000, 'must be a whole number of seconds 1..2000000');
const name = str(
  'must be 1..63 characters of letters, digits, "-", "_" or "."',
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
  63,
);
/** Backend names may also look like the default "address:port" / "[v6]:port". */
const backendName = str(
  'must be 1..63 characters of letters, digits, "-", "_", ".", ":", "[" or "]"',
  /^[A-Za-z0-9[][A-Za-z0-9._:[\]-]{0,62}$/,
  63,
);

const STATUS = 'must be an HTTP status 100..599 or a list of them';
const httpStatus = int(100, 599, STATUS);
const expectStatus = z
  .union(
    [
      httpStatus,
      z
        .array(httpStatus, { error: says(STATUS) })
        .min(1, { error: STATUS })
        .max(64, { error: STATUS }),
    ],
    { error: says(STATUS) },
  )
  .meta({ description: 'HTTP status (or list of statuses) a healthy backend answers.' });
const hostHeader = str('must be a host name or address of at most 255 characters, without spaces', /^\S+$/);
const udpData = (what: string) =>
  z
    .string({ error: says(what) })
    .min(1, { error: what })
    .max(1024, { error: what });

export const dampingSchema = map({
  enabled: z
    .boolean({ error: says('must be true or false') })
    .default(true)
    .meta({ description: 'Flap damping (RFC 2439 style): a flapping backend is held down.' }),
  penalty_per_flap: int(1, 1_000_000)
    .default(1000)
    .meta({ description: 'Penalty added each time a serving backend goes down.' }),
  suppress_above: int(1, 1_000_000)
    .default(2500)
    .meta({ description: 'Above this penalty the backend may go down but not come back up.' }),
  reuse_below: int(1, 1_000_000)
    .default(1000)
    .meta({ description: 'A suppressed backend is released once its penalty decays below this.' }),
  half_life_ms: int(1000, 86_400_000).default(30_000).meta({ description: 'The penalty halves every half_life_ms.' }),
  max_suppress_ms: int(1000, 86_400_000)
    .default(300_000)
    .meta({ description: 'Longest time a backend stays suppressed.' }),
});

export const healthCheckSchema = map({
  type: oneOf(['tcp', 'http', 'udp', 'none'] as const)
    .default('tcp')
    .meta({ description: 'Probe kind; none marks every backend healthy.' }),
  port: port.optional().meta({ description: 'Port to probe; default the backend port.' }),
  interval_ms: int(100, 3_600_000).default(2000).meta({ description: 'Time between probes.' }),
  timeout_ms: int(10, 3_600_000).default(1000).meta({ description: 'Probe timeout; at most interval_ms.' }),
  jitter_ms: int(0, 3_600_000)
    .optional()
    .meta({ description: 'Random extra delay 0..jitter_ms before each probe; default interval_ms / 10.' }),
  rise: int(1, 100).default(2).meta({ description: 'Consecutive successes that mark a backend healthy.' }),
  fall: int(1, 100).default(3).meta({ description: 'Consecutive failures that mark a backend unhealthy.' }),
  path: str('must be an HTTP path starting with "/"', /^\/\S*$/, 2048)
    .default('/')
    .meta({ description: 'HTTP probe path.' }),
  expect_status: expectStatus.default(200),
  host: hostHeader.optional().meta({ description: 'HTTP Host header; default the backend address.' }),
  udp_payload: udpData('must be a string of 1..1024 characters')
    .optional()
    .meta({ description: 'UDP probe datagram; default "weir-health\\n".' }),
  udp_expect: udpData('must be a string of 1..1024 characters')
    .optional()
    .meta({ description: 'UDP reply a healthy backend sends; default any reply.' }),
  source_address: ipAddress
    .optional()
    .meta({ description: 'Local address probes are sent from; default chosen by the kernel.' }),
  via: oneOf(['direct', 'tunnel'] as const)
    .default('direct')
    .meta({
      description:
        "direct: probe the backend address; tunnel (dsr-gre, tcp/http): connect to VIP:port from each backend's source_address, GRE-encapsulated like client traffic (docs/health.md).",
    }),
  initial_state: oneOf(['unknown', 'up', 'down'] as const)
    .default('unknown')
    .meta({
      description:
        'unknown: the first probe decides; up: serving until fall failures; down: serving after rise successes.',
    }),
  passive_suspect_after: int(1, 1000)
    .default(1)
    .meta({ description: 'Consecutive data-path connection failures that mark a backend suspect (probed at once).' }),
  passive_down_after: int(1, 1000)
    .default(5)
    .meta({ description: 'Consecutive data-path connection failures that mark a backend down.' }),
  damping: dampingSchema.prefault({}),
}).meta({ description: 'Active health check for the backends of one VIP.' });

/** Per-backend overrides of the VIP's health check (only the target and the HTTP request). */
export const backendHealthCheckSchema = map({
  port: port
    .optional()
    .meta({ description: "Port to probe for this backend; default the VIP check's port or the backend port." }),
  path: str('must be an HTTP path starting with "/"', /^\/\S*$/, 2048)
    .optional()
    .meta({ description: 'HTTP probe path for this backend.' }),
  host: hostHeader.optional().meta({ description: 'HTTP Host header for this backend.' }),
  expect_status: expectStatus.optional(),
  source_address: ipAddress.optional().meta({ description: 'Local address probes to this backend are sent from.' }),
}).meta({ description: "Overrides of the VIP's health_check for one backend." });

export const backendSchema = map({
  name: backendName
    .optional()
    .meta({ description: 'Backend identity for Maglev and the CLI; default "address:port".' }),
  address: ipAddress.meta({ description: 'Backend IP address.' }),
  port: port.optional().meta({
    description:
      'Backend port; default the VIP port. Not allowed when the VIP takes all ports, or in DSR modes unless equal to the VIP port.',
  }),
  weight: int(0, MAX_WEIGHT)
    .default(DEFAULTS.weight)
    .meta({ description: 'Relative share of Maglev slots; 0 takes no new flows.' }),
  mac: str('must be a MAC address like 02:00:00:00:00:01', /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, 17)
    .optional()
    .meta({ description: 'Backend MAC address; required in dsr-l2 mode, not allowed otherwise.' }),
  health_check: backendHealthCheckSchema.optional(),
}).meta({ description: 'One backend server behind a VIP.' });

export const vipSchema = map({
  name: name.meta({ description: 'Unique VIP name used by the CLI and logs.' }),
  address: ipAddress.meta({ description: 'Virtual IP address.' }),
  port: z
    .union([z.literal('all', { error: says(PORT_OR_ALL) }), int(1, 65535, PORT_OR_ALL)], { error: says(PORT_OR_ALL) })
    .meta({ description: 'Service port, or "all" to balance every port of the address.' }),
  protocol: oneOf(['tcp', 'udp'] as const).default('tcp'),
  mode: oneOf(['nat', 'dsr-gre', 'dsr-l2'] as const)
    .default('nat')
    .meta({
      description: 'nat: full NAT through weir; dsr-gre: GRE to the backend; dsr-l2: MAC rewrite on a shared segment.',
    }),
  table_size: int(2, MAX_TABLE_SIZE, `must be a prime number 2..${MAX_TABLE_SIZE}`)
    .default(DEFAULT_TABLE_SIZE)
    .meta({ description: 'Maglev lookup table size (prime, ideally > 100 × backends).' }),
  hash_fields: oneOf(['five-tuple', 'source-ip', 'no-source-port'] as const)
    .default('five-tuple')
    .meta({ description: 'Packet fields that pick the Maglev slot.' }),
  min_healthy_backends: int(0, 65535)
    .default(1)
    .meta({ description: 'Below this many healthy backends the VIP is withdrawn.' }),
  health_check: healthCheckSchema.prefault({}),
  syn_proxy: oneOf(['auto', 'on', 'off'] as const)
    .default('auto')
    .meta({
      description:
        'nat TCP VIPs: answer SYNs with SYN cookies and open a flow (entry, SNAT port, SYN to the backend) only for clients that return a valid cookie. on: always; auto: while handshakes left half-open exceed instance.syn_proxy_threshold; off: never. Ignored for dsr modes and UDP.',
    }),
  on_backend_down: oneOf(['keep', 'reschedule'] as const)
    .default('keep')
    .meta({
      description:
        'Existing flows of a backend that goes down: keep them (they fail or finish) or reschedule (delete their entries so the next packet picks a serving backend).',
    }),
  backends: z
    .array(backendSchema, { error: says('must be a list of backends') })
    .min(1, { error: 'must list at least one backend' })
    .max(4096, { error: 'must list at most 4096 backends' }),
}).meta({ description: 'A virtual IP service.' });

export const ctTimeoutsSchema = map({
  syn_sent: seconds().default(DEFAULT_CT_TIMEOUTS.syn_sent),
  syn_recv: seconds().default(DEFAULT_CT_TIMEOUTS.syn_recv),
  established: seconds().default(DEFAULT_CT_TIMEOUTS.established),
  fin_wait: seconds().default(DEFAULT_CT_TIMEOUTS.fin_wait),
  close_wait: seconds().default(DEFAULT_CT_TIMEOUTS.close_wait),
  time_wait: seconds().default(DEFAULT_CT_TIMEOUTS.time_wait),
  close: seconds().default(DEFAULT_CT_TIMEOUTS.close),
  udp: seconds()
    .default(DEFAULT_CT_TIMEOUTS.udp)
    .meta({ description: 'UDP flows of dsr VIPs, and nat UDP flows once traffic went both ways twice (a stream).' }),
  udp_unreplied: seconds()
    .default(DEFAULT_CT_TIMEOUTS.udp_unreplied)
    .meta({ description: 'nat UDP flows the backend has not answered yet.' }),
  udp_replied: seconds().default(DEFAULT_CT_TIMEOUTS.udp_replied).meta({
    description:
      'nat UDP flows answered but not yet both ways twice (a DNS query and its answer): their SNAT port is free again this soon.',
  }),
  icmp: seconds().default(DEFAULT_CT_TIMEOUTS.icmp),
});

const LARGE_COMMUNITY = 'must be a large community GLOBAL:DATA1:DATA2 (each 0..4294967295)';
const COMMUNITY = 'must be a community ASN:VALUE (each 0..65535) or no-export, no-advertise, no-export-subconfed';

const PASSWORD = 'must be a TCP-MD5 password of 1..80 bytes';

export const bfdSchema = map({
  enabled: z
    .boolean({ error: says('must be true or false') })
    .default(false)
    .meta({ description: 'Run BFD (RFC 5880/5881, single hop) with this peer; BFD down takes the BGP session down.' }),
  min_tx_ms: int(10, 60_000, 'must be a whole number of milliseconds 10..60000')
    .default(DEFAULTS.bfdIntervalMs)
    .meta({ description: 'Desired minimum transmit interval once the session is Up (1 s before).' }),
  min_rx_ms: int(10, 60_000, 'must be a whole number of milliseconds 10..60000')
    .default(DEFAULTS.bfdIntervalMs)
    .meta({ description: 'Required minimum receive interval: the fastest the peer may send to weir.' }),
  multiplier: int(1, 255, 'must be an integer 1..255')
    .default(DEFAULTS.bfdMultiplier)
    .meta({ description: 'Detect multiplier: packets missed before a side declares the other down.' }),
});

export const bgpPeerSchema = map({
  address: ipAddress.meta({ description: 'Peer router address.' }),
  remote_as: int(1, 4294967295, 'must be an AS number 1..4294967295'),
  port: port.default(DEFAULTS.bgpPort),
  passive: z
    .boolean({ error: says('must be true or false') })
    .default(false)
    .meta({ description: 'Wait for the peer to connect.' }),
  password: z
    .string({ error: says(PASSWORD) })
    .refine((p) => p.length > 0 && Buffer.byteLength(p, 'utf8') <= 80, { error: PASSWORD })
    .optional()
    .meta({
      description:
        'TCP-MD5 password (RFC 2385) of the session; prefer password_file, which keeps the secret out of this file.',
    }),
  password_file: str('must be a path to the file that holds the TCP-MD5 password', undefined, 4096).optional().meta({
    description:
      'File holding the TCP-MD5 password (one trailing newline ignored); relative to the config file; must not be readable by other users.',
  }),
  bfd: bfdSchema.prefault({}),
});

export const gracefulRestartSchema = map({
  enabled: z
    .boolean({ error: says('must be true or false') })
    .default(false)
    .meta({
      description:
        'Advertise graceful restart (RFC 4724); SIGUSR2 then stops for a restart: routes stay with the routers and the connection table is saved for the next start.',
    }),
  restart_time: int(1, 4095, 'must be a whole number of seconds 1..4095')
    .default(DEFAULTS.grRestartTime)
    .meta({ description: "Seconds routers keep weir's routes after a planned restart closes the sessions." }),
  state_file: str('must be an absolute path', /^\//, 4096).optional().meta({
    description:
      'Where a planned restart saves the connection table; default <control socket directory>/<instance.name>.restart.',
  }),
});

export const bgpSchema = map({
  enabled: z.boolean({ error: says('must be true or false') }).default(false),
  local_as: int(1, 4294967295, 'must be an AS number 1..4294967295')
    .optional()
    .meta({ description: 'Required when enabled.' }),
  router_id: ipAddress.optional().meta({ description: 'IPv4 router id; default the first IPv4 instance address.' }),
  hold_time: int(0, 65535, 'must be 0 or 3..65535 seconds').default(DEFAULTS.bgpHoldTime),
  peers: z.array(bgpPeerSchema, { error: says('must be a list of peers') }).default([]),
  communities: z
    .array(
      str(COMMUNITY, /^(\d{1,5}:\d{1,5}|no-export|no-advertise|no-export-subconfed)$/, 19).refine(
        (c) => !c.includes(':') || c.split(':').every((p) => Number(p) <= 65535),
        { error: COMMUNITY },
      ),
      { error: says('must be a list of communities') },
    )
    .default([])
    .meta({ description: 'Standard communities (RFC 1997) attached to every VIP route.' }),
  large_communities: z
    .array(
      str(LARGE_COMMUNITY, /^\d{1,10}:\d{1,10}:\d{1,10}$/, 32).refine(
        (c) => c.split(':').every((p) => Number(p) <= 4294967295),
        { error: LARGE_COMMUNITY },
      ),
      { error: says('must be a list of large communities') },
    )
    .default([])
    .meta({ description: 'Large communities (RFC 8092) attached to every VIP route.' }),
  med: int(0, 4294967295).optional().meta({ description: 'MULTI_EXIT_DISC sent with every VIP route.' }),
  shutdown_wait_ms: int(0, 60_000)
    .default(DEFAULTS.bgpShutdownWaitMs)
    .meta({ description: 'On SIGTERM: re-announce with GRACEFUL_SHUTDOWN (RFC 8326), wait this long, then withdraw.' }),
  graceful_restart: gracefulRestartSchema.prefault({}),
});

/** host:port with an IPv4 literal, [IPv6] literal or host name. */
const listenAddress = z
  .string({ error: says('must be "host:port", e.g. 127.0.0.1:9473 or [::1]:9473') })
  .refine((s) => parseListen(s) !== null, { error: 'must be "host:port", e.g. 127.0.0.1:9473 or [::1]:9473' });

export function parseListen(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const host = m[1] ?? m[2];
  const p = Number(m[3]);
  if (p < 1 || p > 65535) return null;
  if (m[1] !== undefined && parseIp(host)?.length !== 16) return null;
  return { host, port: p };
}

export const instanceSchema = map({
  name: name
    .default(DEFAULTS.instanceName)
    .meta({ description: 'Instance name for logs and status; use one per namespace.' }),
  addresses: z
    .array(ipAddress, { error: says('must be a list of IP addresses') })
    .default([])
    .meta({
      description:
        "weir's own addresses: the first of each family is the GRE outer source (dsr-gre) and, without snat_addresses, the SNAT source (nat).",
    }),
  snat_addresses: z
    .array(ipAddress, { error: says('must be a list of IP addresses') })
    .max(64, { error: 'must list at most 64 addresses' })
    .default([])
    .meta({
      description:
        'The SNAT pool of nat VIPs (IPv4 and IPv6; a VIP uses those of its family). Each address adds snat_ports worth of flows per backend address, port and protocol (README "SNAT ports"). Default: the first instance address of each family.',
    }),
  snat_ports: map({
    min: int(1, 65535, 'must be a port number 1..65535')
      .default(DEFAULTS.snatPortMin)
      .meta({ description: 'Lowest SNAT source port.' }),
    max: int(1, 65535, 'must be a port number 1..65535')
      .default(DEFAULTS.snatPortMax)
      .meta({ description: 'Highest SNAT source port (at least min).' }),
  })
    .prefault({})
    .meta({
      description:
        "Source ports nat flows get on each SNAT address. The default stays below the kernel's ephemeral range (32768..60999) so the host's own connections from the same address never collide; an address only weir uses can take 1024..65535.",
    }),
  interfaces: z
    .array(str('must be an interface name (1..15 characters, no "/" or spaces)', /^[^\s/]{1,15}$/, 15), {
      error: says('must be a list of interface names'),
    })
    .default([])
    .meta({ description: 'Interfaces the data plane attaches to.' }),
  io: oneOf(['afpacket', 'afxdp', 'tun'] as const)
    .default('afpacket')
    .meta({
      description:
        'Packet I/O: afpacket (AF_PACKET rings on instance.interfaces), afxdp (an XDP program sends VIP and SNAT traffic to AF_XDP sockets on instance.interfaces, one per receive queue) or tun (the kernel routes VIP and SNAT traffic into a TUN device; nat and dsr-gre only).',
    }),
  xdp_mode: oneOf(['native', 'generic'] as const)
    .default('native')
    .meta({
      description:
        "With io: afxdp, attach the XDP program at the driver's hook (native) or the kernel's generic one (for drivers without XDP support; slower).",
    }),
  tun_name: str('must be an interface name (1..15 characters, no "/" or spaces)', /^[^\s/]{1,15}$/, 15)
    .default('weir-tun0')
    .meta({ description: 'With io: tun, the multi-queue TUN device weir creates (one queue per worker).' }),
  workers: z
    .union([int(1, 64), z.literal('auto')], { error: says('must be an integer 1..64 or auto') })
    .default(DEFAULTS.workers)
    .meta({ description: 'Data-plane worker threads; auto: one per CPU the process may use (at most 64).' }),
  l2_output: z
    .boolean({ error: says('must be true or false') })
    .default(true)
    .meta({
      description:
        "nat and dsr-gre packets to a backend leave as Ethernet frames to its next hop's MAC (from the host's routing and neighbour tables, read every second) instead of through the kernel's IP output; false: the kernel routes every packet (policy routing, tunnels).",
    }),
  worker_scheduling: map({
    policy: oneOf(['other', 'fifo', 'rr'] as const)
      .default('other')
      .meta({
        description:
          "The data-plane worker threads' scheduling policy: other (the kernel's default) or a real-time one, fifo or rr, so that a woken worker runs before every ordinary thread on its CPU. Only the workers change; needs CAP_SYS_NICE.",
      }),
    priority: int(1, 99).default(10).meta({ description: 'Real-time priority for fifo and rr (1..99).' }),
    nice: int(-20, 19).default(0).meta({ description: 'Nice value for policy other (-20..19; lower runs sooner).' }),
  })
    .prefault({})
    .meta({ description: 'How the kernel schedules the data-plane workers (docs/io.md measures the policies).' }),
  drop_privileges: z
    .boolean({ error: says('must be true or false') })
    .default(true)
    .meta({
      description:
        'Once its sockets, devices and listeners are open, `weir run` keeps only the capabilities it still needs (CAP_NET_ADMIN, CAP_NET_RAW; CAP_NET_BIND_SERVICE with BGP; CAP_SYS_NICE for a fifo/rr or negative-nice worker_scheduling) in every thread, and the bounding set of the programs it runs. Restart-only.',
    }),
  gro: oneOf(['off', 'keep'] as const)
    .default('off')
    .meta({
      description:
        'GRO and LRO on instance.interfaces (afpacket, afxdp): off (weir turns both off while it runs and restores them when it stops: its frames are MTU-sized, and an aggregated super-frame would be dropped as dropGso) or keep (leave them as they are).',
    }),
  busy_poll_us: int(0, 1000).default(DEFAULTS.busyPollUs).meta({
    description:
      'Microseconds a worker keeps watching its rings after it forwarded a batch, before it sleeps in poll() (never after an idle poll() timed out): saves a wakeup per packet at moderate load on hosts with a spare core per worker, costs CPU while traffic flows. 0 = sleep at once.',
  }),
  unknown_traffic: oneOf(['pass', 'drop'] as const)
    .default('pass')
    .meta({ description: 'Packets that match no VIP: pass (the kernel handles them) or drop (counted).' }),
  syn_proxy_threshold: int(1, 100_000_000).default(DEFAULT_SYN_PROXY_THRESHOLD).meta({
    description:
      "nat TCP handshakes left half-open (whole instance; SYNs whose handshake did not complete, decaying over one second, so about the unanswered SYNs per second) above which VIPs with syn_proxy: auto answer with SYN cookies, until it falls below half of it. Steady legitimate traffic completes its handshakes and keeps it near 0; a sudden rise of r new connections per second adds about r × the clients' round-trip time for a moment.",
  }),
  fragments: oneOf(['drop', 'pass'] as const)
    .default('drop')
    .meta({
      description:
        'IP fragments to a VIP: drop (counted) or pass to the kernel; later fragments carry no ports to balance on.',
    }),
});

export const configSchema = map({
  instance: instanceSchema.prefault({}),
  cluster: map({
    hash_seed: str('must be a non-empty string of at most 256 characters', undefined, 256)
      .default(DEFAULTS.hashSeed)
      .meta({ description: 'Shared by every instance of a cluster so all build the same Maglev tables.' }),
  }).prefault({}),
  vips: z.array(vipSchema, { error: says('must be a list of VIPs') }).default([]),
  conntrack: map({
    capacity: int(1024, MAX_CAPACITY)
      .default(DEFAULTS.ctCapacity)
      .meta({ description: 'Connection-table entries (about 140 bytes of shared memory each).' }),
    timeouts: ctTimeoutsSchema.prefault({}),
  }).prefault({}),
  bgp: bgpSchema.prefault({}),
  metrics: map({
    listen: z
      .union([listenAddress, z.literal(false)], { error: says('must be "host:port" or false') })
      .default(DEFAULTS.metricsListen)
      .meta({ description: 'Prometheus listen address, or false to disable.' }),
  }).prefault({}),
  control: map({
    socket: str('must be an absolute path of at most 107 bytes', /^\/.*/, 107)
      .default(DEFAULTS.controlSocket)
      .meta({ description: 'Control socket path (mode 0600); give each instance its own.' }),
  }).prefault({}),
  rate_limits: map({
    new_flows_per_second: int(0, 100_000_000).default(0).meta({
      description:
        'New flows per second for the whole instance (a token bucket shared by the workers); 0 = unlimited. Flows over it are dropped as dropRateLimitInstance.',
    }),
    burst: int(0, 100_000_000)
      .default(0)
      .meta({ description: "The instance bucket's size: new flows above the rate at once; 0 = one second's worth." }),
    per_client_new_flows_per_second: int(0, 100_000_000).default(0).meta({
      description:
        'New flows per second from one client prefix (client_prefix_v4 / _v6); 0 = unlimited. Flows over it are dropped as dropRateLimitClient.',
    }),
    per_client_burst: int(0, 100_000_000)
      .default(0)
      .meta({ description: "Each client prefix's bucket size; 0 = one second's worth." }),
    client_prefix_v4: int(0, 32)
      .default(24)
      .meta({ description: 'IPv4 clients in one prefix of this length share a bucket (32: per address).' }),
    client_prefix_v6: int(0, 128)
      .default(64)
      .meta({ description: 'IPv6 clients in one prefix of this length share a bucket (128: per address).' }),
  })
    .prefault({})
    .meta({
      description:
        'Token buckets on new flows (a packet that opens a connection entry), per instance and per client prefix; applied on reload.',
    }),
  log: map({
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const).default('info'),
  }).prefault({}),
}).meta({ title: 'weir configuration', description: 'weir L4 load balancer configuration (weir.yaml).' });

export type WeirConfig = z.output<typeof configSchema>;
export type VipConfig = z.output<typeof vipSchema>;
export type BackendConfig = z.output<typeof backendSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type BackendHealthCheckConfig = z.output<typeof backendHealthCheckSchema>;
export type CtTimeoutsConfig = z.output<typeof ctTimeoutsSchema>;
export type BgpPeerConfig = z.output<typeof bgpPeerSchema>;
export type RateLimitsConfig = z.output<typeof configSchema>['rate_limits'];
