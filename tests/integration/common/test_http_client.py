"""The HTTP client sends bytes bodies on the reactor it is given: treq's default body
producer runs on the global reactor, so on another one a POST's body never left."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from common.http_client import make_http_client
from sandbox.pytest_smsc import run_on_fresh_reactor


def test_post_body_is_sent_on_a_non_global_reactor():
    """A POST from a fresh reactor (not the global one) arrives with its whole body."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args):
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()

    async def go(reactor):
        client = make_http_client(reactor)
        response = await client.post(f"http://127.0.0.1:{server.server_address[1]}/",
                                     data=b'{"id": "r:1"}')
        return response.code

    try:
        assert run_on_fresh_reactor(go, timeout=10) == 204
    finally:
        server.server_close()
    assert received == [b'{"id": "r:1"}']
