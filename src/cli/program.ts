// The `weir` command line: parses arguments and hands off to the library or the control client.
// Exit codes: 0 success, 1 failure (daemon unreachable, request refused), 2 invalid config.
// The config, Maglev and YAML modules load lazily: the daemon commands start faster without them.
import { renderTop } from './top.js';
import { Command, Option } from 'commander';
import { VERSION } from '../version.js';
import type { WeirConfig } from '../config/schema.js';
import { DEFAULT_CONTROL_SOCKET } from '../config/defaults.js';
import { hostPort } from '../config/address.js';
import { ControlClient, ControlClientError } from '../control/client.js';
import type {
  BackendView,
  BgpMessageCounts,
  BgpStatus,
  ConnView,
  HealthSummary,
  StatusView,
  VipView,
} from '../control/api.js';
import { duration, keyValues, percent, si, StreamingTable, table, type Cell } from './format.js';
import { registerSimulate } from './simulate.js';
import { registerDecap } from './decap.js';

/** Thrown by actions to end with a message and an exit code. */
class CliExit extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

interface SocketOpts {
  socket?: string;
  config?: string;
  json?: boolean;
}

function out(s: string): void {
  process.stdout.write(s);
}

function printJson(v: unknown): void {
  out(JSON.stringify(v, null, 2) + '\n');
}

async function loadOrExit(file: string): Promise<WeirConfig> {
  const { ConfigError, loadConfigFile } = await import('../config/load.js');
  try {
    return loadConfigFile(file);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliExit(e.message, 2);
    throw e;
  }
}

/** --socket, else the config's control.socket, else $WEIR_SOCKET, else the default. */
async function socketOf(o: SocketOpts): Promise<string> {
  if (o.socket) return o.socket;
  if (o.config) return (await loadOrExit(o.config)).control.socket;
  return process.env.WEIR_SOCKET || DEFAULT_CONTROL_SOCKET;
}

function withSocket(cmd: Command): Command {
  return cmd
    .option('-s, --socket <path>', `control socket (default: $WEIR_SOCKET or ${DEFAULT_CONTROL_SOCKET})`)
    .option('-c, --config <file>', "take the socket path from this config's control.socket")
    .option('--json', 'print JSON instead of a table');
}

async function client(o: SocketOpts): Promise<ControlClient> {
  return new ControlClient(await socketOf(o));
}

function printStatus(s: StatusView): void {
  const last = s.lastReload;
  out(
    keyValues([
      ['instance', s.instance],
      ['version', s.version],
      ['pid', s.pid],
      ['uptime', `${s.uptimeSeconds}s`],
      ['config', s.configFile],
      ['generation', s.generation],
      ['last reload', last ? `${last.at} ${last.ok ? 'ok' : 'FAILED'}: ${last.message}` : 'none'],
      [
        'runtime weights',
        s.runtimeWeights.length
          ? `${s.runtimeWeights
              .slice(0, 5)
              .map((w) => `${w.vip}/${w.backend} ${w.weight} (file ${w.configured})`)
              .join(
                ', ',
              )}${s.runtimeWeights.length > 5 ? ` and ${s.runtimeWeights.length - 5} more` : ''}; the next reload restores the file's`
          : 'none (as in the config file)',
      ],
      ['dataplane', s.dataplane.description],
      ['conntrack', `${s.conntrack.size} / ${s.conntrack.capacity} entries`],
      ['health', healthLine(s.health)],
      ['bgp', bgpLine(s.bgp)],
      ['metrics', s.metrics],
      ['hash seed', s.hashSeed],
    ]),
  );
  out('\n');
  out(
    s.vips.length
      ? table(
          ['VIP', 'STATE', 'SERVING', 'MIN', 'SINCE', 'FINGERPRINT'],
          s.vips.map((v) => [
            v.name,
            v.state,
            `${v.servingBackends}/${v.backends}`,
            v.minHealthyBackends,
            v.since ?? '-',
            v.fingerprint,
          ]),
        )
      : 'no VIPs configured\n',
  );
  if (s.snat.backends.length) {
    out('\n');
    out(`snat: ${s.snat.addresses.join(', ')} ports ${s.snat.portMin}-${s.snat.portMax}\n`);
    out(
      table(
        ['VIP', 'BACKEND', 'ADDRESS', 'SNAT PORTS', 'CAP', 'USED'],
        s.snat.backends.map((b) => [
          b.vip,
          b.backend,
          hostPort(b.address, b.port),
          b.inUse,
          b.capacity,
          b.capacity > 0 ? percent(b.inUse / b.capacity) : '-',
        ]),
      ),
    );
  }
  if (s.bgp.enabled) {
    out('\n');
    out(
      table(
        ['PEER', 'AS', 'STATE', 'SINCE', 'ROUTES', 'LAST DOWN'],
        s.bgp.peers.map((p) => [p.peer, p.remoteAs, p.state, p.since, p.routes, p.lastDown ?? '-']),
      ),
    );
  }
}

function healthLine(x: HealthSummary): string {
  return `${x.backends} backends: ${x.up} up, ${x.suspect} suspect, ${x.down} down, ${x.unknown} unknown; ${x.tableRebuilds} table rebuilds`;
}

function bgpLine(x: BgpStatus): string {
  if (!x.enabled) return 'disabled';
  const up = x.peers.filter((p) => p.state === 'Established').length;
  const listen = x.listening ? `, listening on ${x.listening} (${x.refusedConnections} connections refused)` : '';
  return `AS ${x.localAs}, router id ${x.routerId}, ${up}/${x.peers.length} sessions established, announcing ${x.announced.length} prefixes${listen}${x.selfHealthy ? '' : ' (weir not healthy: nothing announced)'}`;
}

const sum = (c: BgpMessageCounts): number => Object.values(c).reduce((a, b) => a + b, 0);

/** `weir bgp`: one line per peer, then what each peer carries and why it last went down. */
function printBgp(b: BgpStatus): void {
  if (!b.enabled) return out('bgp: disabled (bgp.enabled: false)\n');
  const peers = b.peers;
  const gr = b.gracefulRestart;
  const md5 = b.tcpMd5Kernel;
  out(
    keyValues([
      ['local AS', b.localAs],
      ['router id', b.routerId],
      [
        'announced',
        `${b.announced.length} prefixes on Established sessions (${b.wanted.length} wanted${b.selfHealthy ? '' : '; weir not healthy'})`,
      ],
      [
        'graceful restart',
        gr.enabled
          ? `on, restart time ${gr.restartTime} s${gr.restarting ? `; restarted${gr.endOfRibHeld ? ', End-of-RIB held until the routes are known' : ''}` : ''}`
          : 'off',
      ],
      ...(b.listening
        ? [['listening', `${b.listening} (${b.refusedConnections} connections refused)`] as [string, string]]
        : []),
      ...(md5
        ? [
            [
              'tcp-md5 drops',
              `${md5.failure} bad signature, ${md5.notFound} unsigned, ${md5.unexpected} unexpected (kernel, this namespace)`,
            ] as [string, string],
          ]
        : []),
    ]),
  );
  out('\n');
  out(
    table(
      ['PEER', 'AS', 'STATE', 'UPTIME', 'MSGS IN', 'MSGS OUT', 'PREFIXES', 'BFD', 'MD5', 'CAPABILITIES'],
      peers.map((p) => [
        p.peer,
        p.remoteAs,
        p.state,
        p.uptimeSeconds === null ? '-' : duration(p.uptimeSeconds * 1000),
        sum(p.messages.in),
        sum(p.messages.out),
        p.prefixes.length,
        p.bfd ? `${p.bfd.state} ${p.bfd.minTxMs}ms×${p.bfd.multiplier}` : 'off',
        p.md5 ? 'on' : 'off',
        p.capabilities.negotiated.join(',') || '-',
      ]),
    ),
  );
  for (const p of peers) {
    out(`\n${p.peer}${p.passive ? ' (passive)' : ''}:\n`);
    const m = (c: BgpMessageCounts) =>
      `${c.open} open, ${c.update} update, ${c.keepalive} keepalive, ${c.notification} notification, ${c.routeRefresh} route-refresh`;
    out(
      keyValues([
        ['  prefixes', p.prefixes.join(' ') || '-'],
        ['  messages in', m(p.messages.in)],
        ['  messages out', m(p.messages.out)],
        ['  hold time', p.holdTime === null ? '-' : `${p.holdTime} s`],
        [
          '  capabilities',
          `sent ${p.capabilities.advertised.join(',')}; received ${p.capabilities.received.join(',') || '-'}`,
        ],
        [
          '  bfd',
          p.bfd
            ? `${p.bfd.state} (peer ${p.bfd.remoteState}), ${p.bfd.diag}, tx every ${p.bfd.txIntervalMs} ms, detect ${p.bfd.detectTimeMs} ms, up ${p.bfd.upCount} times`
            : 'off',
        ],
        [
          '  connects',
          `${p.connect.attempts} attempts, ${p.connect.timeouts} timed out${p.md5 && p.connect.timeouts > 0 ? ' (TCP-MD5 on: a wrong password looks like this)' : ''}, ${p.connect.errors} failed${p.connect.lastError ? `; last: ${p.connect.lastError}` : ''}`,
        ],
        ['  last down', p.lastDown ?? '-'],
      ]),
    );
  }
}

function printVips(vips: VipView[]): void {
  if (vips.length === 0) return out('no VIPs configured\n');
  out(
    table(
      [
        'NAME',
        'ADDRESS',
        'PROTO',
        'MODE',
        'BACKENDS',
        'ACTIVE',
        'TABLE',
        'HASH',
        'STATE',
        'PKT/S',
        'FLOWS/S',
        'FLOWS',
        'FINGERPRINT',
      ],
      vips.map((v) => [
        v.name,
        hostPort(v.address, v.port),
        v.protocol,
        v.mode,
        v.backends,
        v.activeBackends,
        v.tableSize,
        v.hashFields,
        v.state,
        si(v.traffic?.packetsInPerSec),
        si(v.traffic?.newFlowsPerSec),
        si(v.traffic?.activeFlows),
        v.fingerprint,
      ]),
    ),
  );
}

function printBackends(rows: BackendView[]): void {
  if (rows.length === 0) return out('no backends\n');
  out(
    table(
      [
        'VIP',
        'BACKEND',
        'ADDRESS',
        'WEIGHT',
        'STATE',
        'HEALTH',
        'CAUSE',
        'SINCE',
        'LAST PROBE',
        'SLOTS',
        'SHARE',
        'PKT/S',
        'FLOWS/S',
        'FLOWS',
      ],
      rows.map((b) => {
        const lp = b.lastProbe;
        return [
          b.vip,
          b.name,
          hostPort(b.address, b.port),
          b.configuredWeight !== undefined ? `${b.weight} (file ${b.configuredWeight})` : b.weight,
          b.drained ? 'drained' : 'active',
          b.health,
          b.healthCause ?? '-',
          b.healthSince ?? '-',
          lp ? `${lp.outcome} (${lp.detail}, ${Math.round(lp.latencyMs)} ms) at ${lp.at}` : '-',
          b.slots,
          percent(b.share),
          si(b.traffic?.packetsInPerSec),
          si(b.traffic?.newFlowsPerSec),
          si(b.traffic?.activeFlows),
        ];
      }),
    ),
  );
}

const CONN_HEADERS = ['PROTO', 'CLIENT', 'VIP', 'BACKEND', 'STATE', 'EXPIRES', 'PKTS', 'BYTES'];

function connRow(c: ConnView): Cell[] {
  return [
    String(c.proto),
    hostPort(c.client, c.clientPort),
    `${c.vipName ?? c.vipId} ${hostPort(c.vip, c.vipPort)}`,
    c.backendName ?? String(c.backendId),
    c.state,
    duration(c.expiresInMs),
    c.pktsOrig + c.pktsReply,
    c.bytesOrig + c.bytesReply,
  ];
}

function backendText(b: { name: string; address: string; port: number } | null): string {
  if (!b) return 'none (no backend takes new flows)';
  const endpoint = hostPort(b.address, b.port);
  return b.name === endpoint ? endpoint : `${b.name} (${endpoint})`;
}

interface ConnOpts extends SocketOpts {
  vip?: string;
  backend?: string;
  state?: string;
  client?: string;
  limit?: string;
  all?: boolean;
}

function connFilterOptions(cmd: Command): Command {
  return cmd
    .option('--vip <name>', 'only connections of this VIP')
    .option('--backend <name>', 'only connections to this backend')
    .option('--state <state>', 'only connections in this state (e.g. established, syn_recv)')
    .option('--client <prefix>', 'only clients in this prefix (198.18.0.0/16, fd00::/8 or one address)');
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('weir')
    .description('weir: an L4 passthrough / direct-server-return load balancer')
    .version(VERSION, '-V, --version', 'print the weir version')
    .showHelpAfterError();

  program
    .command('validate')
    .description('check a config file and print the normalized result (exit 2 if invalid)')
    .requiredOption('-c, --config <file>', 'config file')
    .option('--json', 'print JSON (the normalized config, or the list of problems)')
    .option('-q, --quiet', 'print nothing when the config is valid')
    .action(async (o: { config: string; json?: boolean; quiet?: boolean }) => {
      const { ConfigError, formatIssue, loadConfigFile } = await import('../config/load.js');
      const { default: YAML } = await import('yaml');
      try {
        const cfg = loadConfigFile(o.config);
        if (o.quiet) return;
        // TCP-MD5 passwords are not echoed.
        for (const p of cfg.bgp.peers) if (p.password !== undefined) p.password = '(hidden)';
        if (o.json) printJson(cfg);
        else out(YAML.stringify(cfg));
        process.stderr.write(
          `weir: ${o.config} is valid: ${cfg.vips.length} VIPs, ${cfg.vips.reduce((n, v) => n + v.backends.length, 0)} backends\n`,
        );
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        if (o.json)
          printJson({ ok: false, file: o.config, issues: e.issues.map((i) => ({ ...i, text: formatIssue(i) })) });
        throw new CliExit(e.message, 2);
      }
    });

  program
    .command('run')
    .description('run the daemon in the foreground (SIGHUP reloads, SIGTERM stops)')
    .requiredOption('-c, --config <file>', 'config file')
    .action(async (o: { config: string }) => {
      const { runDaemon } = await import('../daemon/run.js');
      const code = await runDaemon(o.config);
      process.exit(code);
    });

  withSocket(
    program.command('status').description('show the running daemon: config generation, data plane, VIP fingerprints'),
  ).action(async (o: SocketOpts) => {
    const s = await (await client(o)).call('status');
    if (o.json) printJson(s);
    else printStatus(s);
  });

  withSocket(
    program
      .command('bgp')
      .description('BGP peers: state, uptime, messages, prefixes announced, capabilities, BFD and TCP-MD5'),
  ).action(async (o: SocketOpts) => {
    const b = await (await client(o)).call('bgp');
    if (o.json) printJson(b);
    else printBgp(b);
  });

  withSocket(program.command('vips').description('list the VIPs with their Maglev fingerprints')).action(
    async (o: SocketOpts) => {
      const v = await (await client(o)).call('vips');
      if (o.json) printJson(v);
      else printVips(v);
    },
  );

  withSocket(
    program
      .command('backends')
      .description('list backends with weight, drain state and Maglev slots')
      .argument('[vip]', 'only this VIP'),
  ).action(async (vip: string | undefined, o: SocketOpts) => {
    const b = await (await client(o)).call('backends', { vip });
    if (o.json) printJson(b);
    else printBackends(b);
  });

  withSocket(
    program
      .command('top')
      .description('live view, refreshed every second: per VIP and backend rates, active flows, health, table use')
      .option('--iterations <n>', 'stop after n refreshes (default: until interrupted)', (v) => Number(v), 0),
  ).action(async (o: SocketOpts & { iterations: number }) => {
    const c = await client(o);
    const tty = process.stdout.isTTY;
    for (let i = 0; o.iterations === 0 || i < o.iterations; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 1000));
      const [v, b, ct] = await Promise.all([c.call('vips'), c.call('backends', {}), c.call('conntrackStats')]);
      if (o.json) printJson({ vips: v, backends: b, conntrack: ct });
      else out((tty ? '\x1b[H\x1b[2J' : i > 0 ? '\n' : '') + renderTop(v, b, ct));
    }
  });

  const backend = program.command('backend').description('steer one backend');
  for (const [verb, help] of [
    ['drain', 'stop sending new flows to a backend; its existing connections continue'],
    ['undrain', 'let a drained backend take new flows again'],
  ] as const) {
    withSocket(
      backend.command(verb).description(help).argument('<vip>', 'VIP name').argument('<backend>', 'backend name'),
    ).action(async (vip: string, name: string, o: SocketOpts) => {
      const r = await (await client(o)).call(verb, { vip, backend: name });
      if (o.json) printJson(r);
      else
        out(
          `${vip}/${name}: ${r.drained ? 'drained' : 'active'}${r.changed ? '' : ' (unchanged)'}; table ${r.fingerprint}\n`,
        );
    });
  }

  withSocket(
    backend
      .command('weight')
      .description(
        "set a backend's weight now (its VIP's table is rebuilt at once); the next reload restores the file's",
      )
      .argument('<vip>', 'VIP name')
      .argument('<backend>', 'backend name')
      .argument('<weight>', 'integer 0..65535'),
  ).action(async (vip: string, name: string, weight: string, o: SocketOpts) => {
    const w = /^\d+$/.test(weight) ? Number(weight) : NaN;
    const r = await (await client(o)).call('weight', { vip, backend: name, weight: w });
    if (o.json) printJson(r);
    else
      out(
        `${vip}/${name}: weight ${r.weight}${r.changed ? '' : ' (unchanged)'}${r.weight !== r.configured ? ` (config file: ${r.configured}, restored by the next reload)` : ''}; table ${r.fingerprint}\n`,
      );
  });

  const ct = program.command('conntrack').description('inspect and flush the connection table');
  withSocket(connFilterOptions(ct.command('list').description('list connections')))
    .option('--limit <n>', 'at most this many entries (the rest are counted and reported on stderr)', '100')
    .action(async (o: ConnOpts) => {
      // Rows are printed as they arrive: neither the daemon nor the CLI holds the whole listing.
      const t = o.json ? null : new StreamingTable(CONN_HEADERS, out);
      let n = 0;
      if (o.json) out('[');
      const summary = await (
        await client(o)
      ).stream(
        'conntrackList',
        { vip: o.vip, backend: o.backend, state: o.state, client: o.client, limit: Number(o.limit) },
        (row) => {
          // the same text as printJson of the whole array
          if (t) t.row(connRow(row));
          else out((n === 0 ? '\n  ' : ',\n  ') + JSON.stringify(row, null, 2).replaceAll('\n', '\n  '));
          n++;
        },
      );
      if (t) {
        t.end();
        if (n === 0) out('no connections\n');
      } else out(n === 0 ? ']\n' : '\n]\n');
      if (summary.truncated)
        process.stderr.write(
          `weir: showing ${summary.shown} of ${summary.matched} matching connections (--limit N shows more)\n`,
        );
    });
  withSocket(ct.command('stats').description('connection-table size, entries by state and counters')).action(
    async (o: SocketOpts) => {
      const s = await (await client(o)).call('conntrackStats');
      if (o.json) return printJson(s);
      out(
        keyValues([
          ['capacity', s.capacity],
          ['entries', s.size],
        ]),
      );
      const states = Object.entries(s.byState);
      out('\n' + table(['STATE', 'ENTRIES'], states.length ? states : [['-', 0]]));
      const counters = Object.entries(s.counters);
      if (counters.length) out('\n' + table(['COUNTER', 'VALUE'], counters));
    },
  );
  withSocket(
    connFilterOptions(
      ct.command('flush').description('delete connections matching the filters (all of them with --all)'),
    ),
  )
    .option('--all', 'delete every connection (required when no filter is given)')
    .action(async (o: ConnOpts) => {
      const filter = { vip: o.vip, backend: o.backend, state: o.state, client: o.client };
      if (!o.all && Object.values(filter).every((v) => v === undefined)) {
        throw new CliExit('conntrack flush with no filter deletes every connection: add --all to confirm', 1);
      }
      const r = await (await client(o)).call('conntrackFlush', filter);
      if (o.json) printJson(r);
      else out(`deleted ${r.deleted} connection${r.deleted === 1 ? '' : 's'}\n`);
    });

  withSocket(program.command('reload').description('re-read the config file and apply the difference (same as SIGHUP)'))
    .option('--allow-empty', 'apply a config with no VIPs even though VIPs are running (removes them all)')
    .action(async (o: SocketOpts & { allowEmpty?: boolean }) => {
      const r = await (await client(o)).call('reload', o.allowEmpty ? { allowEmpty: true } : {});
      if (o.json) return printJson(r);
      const d = r.diff;
      if (d.empty) return out(`reloaded: no changes (generation ${r.generation})\n`);
      out(
        keyValues([
          ['generation', r.generation],
          ['vips added', d.vipsAdded.join(', ') || '-'],
          ['vips removed', d.vipsRemoved.join(', ') || '-'],
          ['vips changed', d.vipsChanged.map((v) => v.name).join(', ') || '-'],
          ['tables rebuilt', r.rebuilt.join(', ') || '-'],
          ['flows flushed', r.flushed],
          ['needs restart', d.needsRestart.join(', ') || '-'],
        ]),
      );
    });

  program
    .command('maglev')
    .description("offline: build a VIP's Maglev table from a config and show its slots per backend")
    .requiredOption('-c, --config <file>', 'config file')
    .requiredOption('--vip <name>', 'VIP name')
    .option('--json', 'print JSON')
    .action(async (o: { config: string; vip: string; json?: boolean }) => {
      const { maglevReport } = await import('./tables.js');
      const r = maglevReport(await loadOrExit(o.config), o.vip);
      if (o.json) return printJson(r);
      out(
        keyValues([
          ['vip', r.vip],
          ['table size', r.tableSize],
          ['fingerprint', r.fingerprint],
        ]) + '\n',
      );
      out(
        table(
          ['BACKEND', 'ADDRESS', 'WEIGHT', 'SLOTS', 'SHARE'],
          r.backends.map((b) => [b.name, hostPort(b.address, b.port), b.weight, b.slots, percent(b.share)]),
        ),
      );
    });

  program
    .command('lookup')
    .description('offline: which backend a new flow from a client maps to, and through which slot')
    .requiredOption('-c, --config <file>', 'config file')
    .requiredOption('--vip <name>', 'VIP name')
    .requiredOption('--client <ip:port>', 'client address and port ([v6]:port for IPv6)')
    .addOption(new Option('--proto <proto>', 'protocol (default: the VIP protocol)').choices(['tcp', 'udp']))
    .option('--port <port>', 'destination port (needed when the VIP takes all ports)')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        config: string;
        vip: string;
        client: string;
        proto?: 'tcp' | 'udp';
        port?: string;
        json?: boolean;
      }) => {
        const { lookupFlow } = await import('./tables.js');
        const port = o.port === undefined ? undefined : Number(o.port);
        if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535))
          throw new CliExit(`--port ${o.port} is not a port number`, 1);
        const r = lookupFlow(await loadOrExit(o.config), o.vip, o.client, o.proto, port);
        if (o.json) return printJson(r);
        out(
          keyValues([
            ['flow', `${r.protocol} ${hostPort(r.client, r.clientPort)} -> ${hostPort(r.vipAddress, r.vipPort)}`],
            ['hash fields', r.hashFields],
            ['hash', `0x${r.hash.toString(16).padStart(8, '0')}`],
            ['slot', r.slot],
            ['backend', backendText(r.backend)],
            ['fingerprint', r.fingerprint],
          ]),
        );
      },
    );

  registerSimulate(program);
  registerDecap(program);
  return program;
}

/** Runs the CLI; maps failures to a one-line message on stderr and the exit code. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CliExit) {
      process.stderr.write(`weir: ${e.message}\n`);
      process.exitCode = e.code;
    } else if (e instanceof ControlClientError) {
      if (argv.includes('--json')) printJson({ error: e.message, ...e.body });
      process.stderr.write(`weir: ${e.message}\n`);
      const issues = e.body?.issues;
      if (Array.isArray(issues)) for (const i of issues) process.stderr.write(`  ${i}\n`);
      process.exitCode = e.status === 422 ? 2 : 1;
    } else {
      process.stderr.write(`weir: ${(e as Error).message ?? String(e)}\n`);
      process.exitCode = 1;
    }
  }
}
