// node-echo - the Node.js `ws` peer of the benchmark: every message goes back
// to its sender. Connections to /broadcast instead get every message any
// /broadcast connection sends (the broadcast scenario's reference server).
//
//   node node-echo.js [--cert FILE --key FILE] [PORT]   (127.0.0.1, default 9001)
//
// With --cert and --key it serves wss://: `ws` on Node's `https` server.
//
// `ws` (and its optional native helper `bufferutil`, if installed) come from
// npm into bench/node_modules; run-peers installs them.
'use strict';

const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const fs = require('fs');
const https = require('https');

const args = process.argv.slice(2);
const opt = {};
while (args.length > 1 && args[0].startsWith('--')) {
  const name = args.shift().slice(2);
  opt[name] = args.shift();
}
const port = Number(args[0] || 9001);
if (!opt.cert !== !opt.key) {
  console.error('usage: node node-echo.js [--cert FILE --key FILE] [PORT]');
  process.exit(2);
}
const tls = Boolean(opt.cert);
const server = tls
  ? https.createServer({ cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key) })
  : null;
const wss = new WebSocketServer({
  ...(server ? { server } : { host: '127.0.0.1', port }),
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 1 << 20,
});
const subscribers = new Set();

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function broadcast(ws) {
  subscribers.add(ws);
  ws.on('close', () => subscribers.delete(ws));
  ws.on('message', (data, isBinary) => {
    for (const peer of subscribers) peer.send(data, { binary: isBinary });
  });
}

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  if (req.url === '/broadcast') broadcast(ws);
  else echo(ws);
});
if (server) {
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening on wss://127.0.0.1:${server.address().port}/`);
  });
} else {
  wss.on('listening', () => {
    console.log(`listening on ws://127.0.0.1:${wss.address().port}/`);
  });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
