#!/usr/bin/env node
// node-echo.js - a known-good reference server for cross-checking the
// conformance suite: Node's `ws` echoing every message back with the same
// opcode, permessage-deflate enabled (ws defaults: context takeover allowed,
// messages under 1 KiB sent uncompressed), 16 MiB message limit.
//
//   NODE_PATH=tests/conformance/node_modules node node-echo.js [PORT]
//
// Listens on 127.0.0.1 only (port 0 by default) and prints
// "listening on ws://127.0.0.1:PORT/". SIGTERM or SIGINT: exit 0.
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: true,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: true,
});

wss.on('connection', (ws) => {
  // A protocol error is reported here after ws has sent its close frame;
  // without a listener it would be thrown.
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
});

wss.on('listening', () => {
  process.stdout.write(`listening on ws://127.0.0.1:${wss.address().port}/\n`);
});

wss.on('error', (err) => {
  process.stderr.write(`node-echo: ${err.message}\n`);
  process.exit(1);
});

function stop() {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
