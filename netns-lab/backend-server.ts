// A lab backend: HTTP that answers with the backend's name and the client address it saw,
// and a UDP echo that prefixes the name. Run inside a backend namespace by lab.ts.
import http from 'node:http';
import dgram from 'node:dgram';

const name = process.argv[2] ?? 'backend';
const httpPort = Number(process.argv[3] ?? 80);
const udpPort = Number(process.argv[4] ?? 7);

// Dual-stack sockets on :: take IPv4 too (as v4-mapped addresses).
const server = http.createServer((req, res) => {
  const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const body = `${name} ${client}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen({ port: httpPort, host: '::', ipv6Only: false });

const udp = dgram.createSocket({ type: 'udp6', ipv6Only: false });
udp.on('message', (msg, rinfo) => {
  udp.send(Buffer.concat([Buffer.from(`${name} `), msg]), rinfo.port, rinfo.address);
});
udp.bind(udpPort, '::');

const stop = (): void => {
  server.close();
  udp.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
