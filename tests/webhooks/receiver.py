"""A real HTTP receiver on a local port, recording what arrives; its answers are scripted.

`responses` is used in order, then `default`. Each answer is a `Reply` or a tuple
(status, headers, delay[, body[, trickle]]): `delay` seconds before answering at all,
`trickle` seconds between the body's bytes (the headers go out at once). It listens on
127.0.0.1 unless told another local address (`host="127.0.0.2"`: all of 127/8 is loopback), and
speaks TLS when given a server context (`tls=`).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple


class Reply(NamedTuple):
    status: int = 200
    headers: dict = {}
    delay: float = 0.0
    body: bytes = b"ok"
    trickle: float = 0.0


def free_port() -> int:
    """A local port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, killed worker) leaves a broken pipe: expected here.
        pass


class Receiver:
    def __init__(self, port: int = 0, path: str = "/hooks", host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None, keep_alive: bool = False):
        self.received: list[dict] = []
        self.keep_alive = keep_alive  # otherwise every answer closes its connection
        self.in_flight = self.most_in_flight = 0
        self.responses: list = []
        self.default = Reply()
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._arrived:
                    receiver.received.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                              "body": body, "path": self.path, "at": time.time(),
                                              "peer": self.client_address})
                    answer = receiver.responses.pop(0) if receiver.responses else receiver.default
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                    receiver._arrived.notify_all()
                reply = Reply(*answer)
                time.sleep(reply.delay)
                with receiver._arrived:
                    receiver.in_flight -= 1
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                if not receiver.keep_alive:
                    self.send_header("connection", "close")
                self.end_headers()
                if reply.trickle:
                    for byte in reply.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(reply.trickle)
                else:
                    self.wfile.write(reply.body)
                self.close_connection = not receiver.keep_alive

            def log_message(self, *args):
                pass

        self.server = _Server((host, port), Handler)
        if tls is not None:
            # The handshake runs on accept; a client that refuses the certificate is an OSError
            # there, which socketserver drops, so the receiver simply records nothing.
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """True once at least `count` requests have arrived, False after `timeout` seconds."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)

    def ids(self) -> list[str]:
        return [message["headers"]["webhook-id"] for message in self.received]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
