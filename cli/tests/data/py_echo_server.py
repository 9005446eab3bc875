"""A WebSocket echo server for interop tests, built on the Python `websockets`
package (>= 12; `.ci/run` installs it).

Binds 127.0.0.1 on a free port (or the port given as the first argument),
prints the port on stdout, then echoes every message back unchanged. It
stops by itself after a time limit (default 60 s, second argument) and, when
its stdin is a pipe, as soon as that pipe reaches EOF (the test that started
it has finished or died), so it never outlives a test run. Run in the
background from a shell (stdin a terminal or /dev/null), only the time limit
applies.

    python3 cli/tests/data/py_echo_server.py            # prints e.g. 40123
    python3 cli/tests/data/py_echo_server.py 9000 600   # fixed port, 10 minutes

With a third argument, a file, it also logs what it receives there, one
line each: `header NAME: VALUE` for every `X-*` handshake header, then
`message TEXT` for every text message (the credential tests read it: the
peer must receive the value the plugin never sees).
"""

import asyncio
import os
import stat
import sys
import threading

import websockets


LOG = sys.argv[3] if len(sys.argv) > 3 else None


def log(line):
    if LOG:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def handshake_headers(ws):
    # websockets >= 13 (new asyncio API) and the legacy API differ here.
    request = getattr(ws, "request", None)
    headers = getattr(request, "headers", None) or getattr(ws, "request_headers", {})
    return headers.raw_items() if hasattr(headers, "raw_items") else headers.items()


async def echo(ws, *_path):
    # `*_path`: websockets 12's legacy server may still pass the path.
    for name, value in handshake_headers(ws):
        if name.lower().startswith("x-"):
            log(f"header {name.lower()}: {value}")
    try:
        async for message in ws:
            if isinstance(message, str):
                log(f"message {message}")
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    limit = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def watch_stdin():
        # Returns at EOF: the parent closed our stdin or exited.
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))

    try:
        piped = stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        piped = False  # no usable stdin
    if piped:
        threading.Thread(target=watch_stdin, daemon=True).start()
    async with websockets.serve(echo, "127.0.0.1", port) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(bound, flush=True)
        try:
            await asyncio.wait_for(stop, timeout=limit)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
