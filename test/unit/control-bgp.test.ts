// The daemon's announcement rule (src/daemon/bgp.ts) without a network: sessions are built but
// never started, and the announcer says what would be sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { DaemonBgp, peerKey, routeAttrs, vipPrefix } from '../../src/daemon/bgp.js';
import type { WeirConfig } from '../../src/config/schema.js';

function config(extra = ''): WeirConfig {
  const r = parseConfigText(`instance: { addresses: [198.18.0.10, fd00::10] }
vips:
  - { name: web, address: 198.18.100.1, port: 80, backends: [{ address: 198.18.1.1 }] }
  - { name: tls, address: 198.18.100.1, port: 443, backends: [{ address: 198.18.1.1 }] }
  - { name: v6, address: fd00::80, port: 80, backends: [{ address: fd00:1::1 }] }
bgp:
  enabled: true
  local_as: 65001
  peers: [{ address: 198.18.0.1, remote_as: 65000 }]
  communities: ["65001:7"]
  med: 5
${extra}`);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

const log = createLogger({ level: 'silent' });

test('VIP prefixes are host routes of their family', () => {
  assert.deepEqual([vipPrefix('198.18.100.1'), vipPrefix('fd00::80')], ['198.18.100.1/32', 'fd00::80/128']);
});

test('route attributes come from bgp.med, communities and large_communities', () => {
  assert.deepEqual(routeAttrs(config('  large_communities: ["65001:1:2"]')), {
    med: 5,
    communities: ['65001:7'],
    largeCommunities: ['65001:1:2'],
  });
  const bare = config();
  assert.deepEqual(
    routeAttrs({ ...bare, bgp: { ...bare.bgp, med: undefined, communities: [] } }),
    {},
    'nothing set, nothing sent',
  );
});

test('an address is announced while weir is healthy and at least one VIP on it is healthy', () => {
  const cfg = config();
  const b = new DaemonBgp(cfg, log);
  b.setVip('web', '198.18.100.1', true);
  b.setVip('tls', '198.18.100.1', false);
  b.setVip('v6', 'fd00::80', true);
  assert.deepEqual(b.announcer.announced(), [], 'nothing before weir is healthy');
  b.setSelfHealthy(true);
  assert.deepEqual(b.announcer.announced().sort(), ['198.18.100.1/32', 'fd00::80/128']);
  b.setVip('web', '198.18.100.1', false);
  assert.deepEqual(b.announcer.announced(), ['fd00::80/128'], 'both VIPs on the address unhealthy: withdrawn');
  b.setVip('tls', '198.18.100.1', true);
  assert.deepEqual(b.announcer.announced().sort(), ['198.18.100.1/32', 'fd00::80/128']);
  b.removeVip('v6');
  assert.deepEqual(b.announcer.announced(), ['198.18.100.1/32']);
  b.setSelfHealthy(false);
  assert.deepEqual(b.announcer.announced(), []);
  const s = b.status(cfg);
  assert.deepEqual(
    [s.localAs, s.routerId, s.peers.map((p) => [p.peer, p.remoteAs, p.state])],
    [65001, '198.18.0.10', [['198.18.0.1', 65000, 'Idle']]],
  );
});

test('after shutdown nothing is announced again, even when weir reports itself healthy', async () => {
  const b = new DaemonBgp(config(), log);
  b.setVip('web', '198.18.100.1', true);
  b.setSelfHealthy(true);
  assert.equal(b.announcer.announced().length, 1);
  await b.shutdown(0);
  b.setSelfHealthy(false);
  b.setSelfHealthy(true);
  b.setVip('v6', 'fd00::80', true);
  assert.deepEqual(b.announcer.announced(), []);
});

test('a connection to the passive listener from a link-local, unknown or unreadable address is refused and counted, never thrown', () => {
  const b = new DaemonBgp(config(), log); // not started: no real listener, connections handed in directly
  const accept = (b as unknown as { onConnection(s: unknown): void }).onConnection.bind(b);
  const remotes = ['fe80::1%weir-x0', '::ffff:198.18.9.9', 'fd00::99', 'not an address', undefined];
  assert.equal(remotes.length, 5);
  let destroyed = 0;
  for (const remoteAddress of remotes) {
    assert.doesNotThrow(
      () =>
        accept({
          remoteAddress,
          on() {},
          destroy() {
            destroyed++;
          },
        }),
      String(remoteAddress),
    );
  }
  assert.equal(destroyed, remotes.length, 'every socket was closed');
  assert.equal(b.status(config()).refusedConnections, remotes.length);
});

test('status.announced lists only what Established peers carry; wanted says what weir would announce', () => {
  const cfg = config();
  const b = new DaemonBgp(cfg, log); // never started: the peer is Idle
  b.setVip('web', '198.18.100.1', true);
  b.setSelfHealthy(true);
  const s = b.status(cfg);
  assert.deepEqual(s.wanted, ['198.18.100.1/32']);
  assert.deepEqual(s.announced, [], 'no route is announced to a peer that is down');
  const p = s.peers[0];
  assert.deepEqual([p.routes, p.prefixes, p.md5, p.bfd, p.uptimeSeconds, p.holdTime], [0, [], false, null, null, null]);
  assert.deepEqual(p.capabilities.advertised, ['ipv4-unicast', 'ipv6-unicast', 'route-refresh', '4-octet-as']);
  assert.deepEqual([s.gracefulRestart.enabled, s.bfd, s.tcpMd5Kernel], [false, null, null]);
});

test('a peer password comes from password or password_file; an unreadable file stops the start with a message naming the peer', () => {
  const withPw = config().bgp.peers[0];
  assert.equal(peerKey({ ...withPw, password: 'sw0rdfish' }), 'sw0rdfish');
  assert.equal(peerKey(withPw), undefined);
  assert.throws(
    () => peerKey({ ...withPw, password_file: '/nonexistent/weir-test.key' }),
    /bgp peer 198\.18\.0\.1: password_file: cannot read \/nonexistent\/weir-test\.key: no such file/,
  );
  const cfg = config();
  cfg.bgp.peers[0].password = 'sw0rdfish';
  const s = new DaemonBgp(cfg, log).status(cfg);
  assert.equal(s.peers[0].md5, true);
  assert.ok(s.tcpMd5Kernel === null || typeof s.tcpMd5Kernel.failure === 'number');
});

test('graceful restart: the capability carries restart_time, and after a restart End-of-RIB is held until released', () => {
  const cfg = config('  graceful_restart: { enabled: true, restart_time: 42 }');
  const fresh = new DaemonBgp(cfg, log);
  assert.deepEqual(
    [fresh.endOfRibHeld, fresh.status(cfg).gracefulRestart],
    [false, { enabled: true, restartTime: 42, restarting: false, forwardingPreserved: false, endOfRibHeld: false }],
  );
  const restarted = new DaemonBgp(cfg, log, { restart: { forwarding: true } });
  assert.equal(restarted.endOfRibHeld, true);
  assert.ok(restarted.status(cfg).peers[0].capabilities.advertised.includes('graceful-restart'));
  restarted.releaseEndOfRib();
  assert.equal(restarted.endOfRibHeld, false);
  // Without graceful_restart a saved state means nothing: no R bit, nothing held.
  assert.equal(new DaemonBgp(config(), log, { restart: { forwarding: true } }).endOfRibHeld, false);
});
