#!/usr/bin/env node
// node-client.js - Node's `ws` as a client of an echo server: text and binary
// messages of many sizes, fragmented messages, pipelined bursts, ping, close.
//
//   NODE_PATH=.../node_modules node node-client.js URL --deflate|--no-deflate
//
// Prints one JSON object on stdout:
//   {"extensions": "<negotiated Sec-WebSocket-Extensions or empty>",
//    "results": [{"name": ..., "ok": true|false, "detail": ...}, ...]}
// Exit status 0 when the run completed (check "ok" of each result), 2 on a
// fatal error or timeout. Only 127.0.0.1 URLs are accepted.
'use strict';

const crypto = require('crypto');
const WebSocket = require('ws');

const url = process.argv[2] || '';
const deflate = process.argv[3] !== '--no-deflate';
const slow = /thread/.test(process.env.SANITIZER || '') ? 3 : 1;

if (!/^ws:\/\/127\.0\.0\.1:\d+\/?$/.test(url)) {
  process.stderr.write('usage: node-client.js ws://127.0.0.1:PORT/ --deflate|--no-deflate\n');
  process.exit(2);
}

const results = [];
function record(name, ok, detail) {
  results.push({ name, ok, detail: detail || '' });
}

setTimeout(() => {
  process.stdout.write(JSON.stringify({ extensions: null, results, fatal: 'timeout' }) + '\n');
  process.exit(2);
}, 60000 * slow).unref();

// Deterministic payloads.
function textOf(n, seed) {
  const words = ['alpha', 'beta', 'κόσμε', '日本語', 'naïve', '😀', 'echo', 'libwsc'];
  const parts = [];
  let len = 0;
  let i = seed;
  while (len < n) {
    const w = words[i % words.length] + ' ';
    const wl = Buffer.byteLength(w);
    if (len + wl > n) {
      parts.push('x'.repeat(n - len)); // pad with ASCII to exactly n bytes
      len = n;
    } else {
      parts.push(w);
      len += wl;
    }
    i = (i * 7 + 3) % 1000;
  }
  return parts.join('');
}
function bytesOf(n, seed, compressible) {
  if (!compressible) {
    const out = Buffer.alloc(n);
    let x = seed * 2654435761 + 1;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  }
  const block = crypto.createHash('sha256').update(String(seed)).digest();
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = block[i % block.length] & 0x0f;
  return out;
}

// A queue of incoming messages so each step can await the next one.
function inbox(ws) {
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (waiters.length) waiters.shift()(m);
    else queue.push(m);
  });
  return () =>
    queue.length
      ? Promise.resolve(queue.shift())
      : new Promise((resolve) => waiters.push(resolve));
}

function same(m, expected, binary) {
  if (m.isBinary !== binary) return `opcode: got ${m.isBinary ? 'binary' : 'text'}`;
  const got = Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data);
  const want = Buffer.isBuffer(expected) ? expected : Buffer.from(expected, 'utf8');
  if (!got.equals(want)) return `payload: got ${got.length} bytes, want ${want.length}`;
  return null;
}

async function main() {
  const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 4 << 20 });
  const next = inbox(ws);
  let extensions = '';
  // ws.extensions has only the names; the parameters are in the response.
  ws.once('upgrade', (res) => {
    extensions = res.headers['sec-websocket-extensions'] || '';
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('error', (err) => record('no error event', false, String(err)));
  if (Boolean(extensions) !== Boolean(ws.extensions)) {
    record('negotiated extension in use', false, `header '${extensions}', in use '${ws.extensions}'`);
  }

  const sizes = [0, 1, 125, 126, 127, 1000, 65535, 65536, 100000, 1 << 20];
  for (const [i, n] of sizes.entries()) {
    const t = textOf(n, i);
    ws.send(t);
    const why = same(await next(), t, false);
    record(`text ${n} bytes`, !why, why);
    for (const compressible of [true, false]) {
      const b = bytesOf(n, i, compressible);
      ws.send(b, { binary: true });
      const why2 = same(await next(), b, true);
      record(`binary ${n} bytes ${compressible ? 'compressible' : 'random'}`, !why2, why2);
    }
  }

  // Fragmented messages: ws sends each call as one frame with fin as given.
  const fragSets = [
    { binary: false, parts: ['κό', 'σμε'] },
    { binary: false, parts: ['', 'a', '', 'b'] },
    { binary: false, parts: Array.from({ length: 50 }, (_, k) => textOf(2000, k)) },
    { binary: true, parts: [bytesOf(70000, 1, true), bytesOf(70000, 2, false), Buffer.alloc(0)] },
    { binary: true, parts: Array.from({ length: 200 }, (_, k) => bytesOf(k, k, true)) },
  ];
  for (const [i, f] of fragSets.entries()) {
    f.parts.forEach((p, k) =>
      ws.send(p, { binary: f.binary, fin: k === f.parts.length - 1 }));
    const whole = f.binary ? Buffer.concat(f.parts) : f.parts.join('');
    const why = same(await next(), whole, f.binary);
    record(`fragmented ${f.binary ? 'binary' : 'text'} #${i + 1} (${f.parts.length} frames)`, !why, why);
  }

  // A pipelined burst.
  const burst = [];
  for (let i = 0; i < 300; i++) {
    const n = [0, 10, 300, 5000, 40000][i % 5];
    burst.push(i % 2 ? { binary: false, data: textOf(n, i) } : { binary: true, data: bytesOf(n, i, i % 3 === 0) });
  }
  for (const m of burst) ws.send(m.data, { binary: m.binary });
  let bad = null;
  for (const [i, m] of burst.entries()) {
    const why = same(await next(), m.data, m.binary);
    if (why && !bad) bad = `#${i}: ${why}`;
  }
  record('300 pipelined messages', !bad, bad);

  // Ping.
  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('compat ping'));
  const pp = await pong;
  record('ping answered', pp.equals(Buffer.from('compat ping')), pp.toString());

  // Close: the server echoes the code.
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason })));
  ws.close(4001, 'compat bye');
  const c = await closed;
  record('close code echoed', c.code === 4001, `code ${c.code}`);

  process.stdout.write(JSON.stringify({ extensions, results }) + '\n');
  process.exit(0);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ extensions: null, results, fatal: String(err && err.stack || err) }) + '\n');
  process.exit(2);
});
