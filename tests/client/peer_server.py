#!/usr/bin/python3
"""A WebSocket server written by others (Python `websockets`) for the client
tests: run as a subprocess, it prints one JSON object per line on stdout:

  {"ev": "listening", "port": P}
  {"ev": "open", "id": N, "path": "/p?q", "headers": [[name, value], ...],
   "subprotocol": S or null, "extensions": response header or null,
   "remote": "host:port"}
  {"ev": "msg", "id": N, "type": "text", "len": L, "text": "..."}
  {"ev": "msg", "id": N, "type": "binary", "len": L, "sha1": "..."}
  {"ev": "pong", "id": N, "payload": "..."}       (answer to a ping we sent)
  {"ev": "closed", "id": N, "code": C, "reason": R}

Default behaviour: echo every message. Text commands:
  "close:<code>:<reason>"  close the connection with that code and reason
  "ping:<payload>"         ping the client; the pong is reported
  "silent:<anything>"      not echoed (for the server to just record)
Options: --host, --port, --no-compression, --subprotocols a,b,
--force-subprotocol X (answer X whatever was offered), --quiet (no "msg"
events, only a count on close: "msgs": N in the "closed" event).
"""

import argparse
import asyncio
import hashlib
import json
import signal
import sys

import websockets


def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-compression", action="store_true")
    ap.add_argument("--subprotocols", default=None)
    ap.add_argument("--force-subprotocol", default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    next_id = [0]

    async def handler(ws, path=None):
        next_id[0] += 1
        cid = next_id[0]
        emit(ev="open", id=cid, path=ws.path,
             headers=[[k, v] for k, v in ws.request_headers.raw_items()],
             subprotocol=ws.subprotocol,
             extensions=ws.response_headers.get("Sec-WebSocket-Extensions"),
             remote="%s:%s" % tuple(ws.remote_address[:2]))
        count = 0
        try:
            async for msg in ws:
                count += 1
                if isinstance(msg, str):
                    if not args.quiet:
                        emit(ev="msg", id=cid, type="text", len=len(msg.encode()),
                             text=msg[:200])
                    if msg.startswith("close:"):
                        _, code, reason = msg.split(":", 2)
                        await ws.close(int(code), reason)
                        continue
                    if msg.startswith("ping:"):
                        payload = msg[5:].encode()
                        waiter = await ws.ping(payload)

                        async def report(w=waiter, p=payload):
                            await w
                            emit(ev="pong", id=cid, payload=p.decode())
                        asyncio.ensure_future(report())
                        continue
                    if msg.startswith("silent:"):
                        continue
                elif not args.quiet:
                    emit(ev="msg", id=cid, type="binary", len=len(msg),
                         sha1=hashlib.sha1(msg).hexdigest())
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        emit(ev="closed", id=cid, code=ws.close_code, reason=ws.close_reason, msgs=count)

    kw = dict(max_size=None, ping_interval=None, close_timeout=5)
    if args.no_compression:
        kw["compression"] = None
    if args.subprotocols:
        kw["subprotocols"] = args.subprotocols.split(",")
    if args.force_subprotocol:
        forced = args.force_subprotocol
        kw["subprotocols"] = [forced]
        kw["select_subprotocol"] = lambda offered, available: forced

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(handler, args.host, args.port, **kw) as server:
        port = server.sockets[0].getsockname()[1]
        emit(ev="listening", port=port)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
