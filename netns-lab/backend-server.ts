// A lab backend: HTTP that answers with the backend's name and the client address it saw,
// and a UDP echo that prefixes the name. Run inside a backend namespace by lab.ts.
// GET /health answers 200 "ok", or 500 after SIGUSR1 (SIGUSR1 again: back to 200), so lab
// tests can fail an HTTP health check without stopping the service. It writes "ready" to stdout
// once every socket is bound, so whoever restarts it knows when it can take flows.
import http from 'node:http';
import dgram from 'node:dgram';

const name = process.argv[2] ?? 'backend';
const httpPort = Number(process.argv[3] ?? 80);
const udpPort = Number(process.argv[4] ?? 7);

let healthStatus = 200;
process.on('SIGUSR1', () => {
  healthStatus = healthStatus === 200 ? 500 : 200;
});

// Dual-stack sockets on :: take IPv4 too (as v4-mapped addresses).
const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    const text = healthStatus === 200 ? 'ok\n' : 'failing (SIGUSR1)\n';
    res.writeHead(healthStatus, {
      'content-type': 'text/plain',
      'x-backend': name,
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
    return;
  }
  const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const body = `${name} ${client}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
let unbound = 1;
const bound = (): void => {
  if (--unbound === 0) process.stdout.write('ready\n');
};
server.listen({ port: httpPort, host: '::', ipv6Only: false }, bound);

// The wildcard socket answers from the routed source address; in DSR the reply must come from
// the VIP the client asked, so each DSR VIP on lo (extra arguments) gets its own socket.
const vips = process.argv.slice(5);
const udps = [undefined, ...vips].map((addr) => {
  const six = addr === undefined || addr.includes(':');
  const s = dgram.createSocket({
    type: six ? 'udp6' : 'udp4',
    ...(six ? { ipv6Only: addr !== undefined } : {}),
    reuseAddr: true,
  });
  s.on('message', (msg, rinfo) => {
    s.send(Buffer.concat([Buffer.from(`${name} `), msg]), rinfo.port, rinfo.address);
  });
  unbound++;
  s.bind(udpPort, addr ?? '::', bound);
  return s;
});

const stop = (): void => {
  server.close();
  for (const u of udps) u.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
