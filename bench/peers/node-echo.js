// node-echo - the Node.js `ws` peer of the benchmark: every message goes back
// to its sender. Connections to /broadcast instead get every message any
// /broadcast connection sends (the broadcast scenario's reference server).
//
//   node node-echo.js [PORT]      (listens on 127.0.0.1, default 9001)
//
// `ws` (and its optional native helper `bufferutil`, if installed) come from
// npm into bench/node_modules; run-peers installs them.
'use strict';

const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const port = Number(process.argv[2] || 9001);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
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
wss.on('listening', () => {
  console.log(`listening on ws://127.0.0.1:${wss.address().port}/`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
