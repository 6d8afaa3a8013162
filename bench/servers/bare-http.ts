/**
 * The ceiling of the serving benchmark: a bare `node:http` server that reads the whole POST body
 * and answers a fixed small JSON. No routing, no parsing, no model; anything a real server does
 * costs throughput against this.
 *
 *   node dist/bench/servers/bare-http.js --port 0   # prints "listening on http://127.0.0.1:<port>"
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

const BODY = Buffer.from('{"model_name":"logreg30","outputs":[]}');

const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
// Node's default keep-alive timeout (5 s) is longer than any gap in the benchmark's load.
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
