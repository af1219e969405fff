"""A local fake OpenAI-compatible `/chat/completions` server for the LLM tests (loopback only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def sse(*parts: str) -> bytes:
    """A well-formed event stream carrying `parts` as content deltas."""
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in parts]
    body = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)
    return (body + "data: [DONE]\n\n").encode("utf-8")


class FakeLLM:
    """mode: stream | status500 | slow | garbage | json | empty | cut (stream without [DONE]
    that breaks after the first delta)."""

    def __init__(self, mode: str = "stream", parts: tuple[str, ...] = ("好的",), delay_s: float = 0.0) -> None:
        self.mode = mode
        self.parts = parts
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(json.loads(self.rfile.read(length).decode("utf-8")))
                fake.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                if fake.mode == "status500":
                    self.send_error(500, "boom")
                    return
                if fake.mode == "json":
                    body = json.dumps({"choices": [{"message": {"content": "".join(fake.parts)}}]}).encode()
                    self._send(body, "application/json")
                    return
                if fake.mode == "garbage":
                    self._send(b"<html>this is not an event stream</html>\n", "text/event-stream")
                    return
                if fake.mode == "empty":
                    self._send(b"data: [DONE]\n\n", "text/event-stream")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                events = sse(*fake.parts).split(b"\n\n")
                for n, event in enumerate(events):
                    if fake.mode == "slow":
                        time.sleep(fake.delay_s)
                    if fake.mode == "cut" and n == 2:
                        self.wfile.write(b"data: {not json\n\n")
                        self.wfile.flush()
                        return
                    try:
                        self.wfile.write(event + b"\n\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return

            def _send(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@contextmanager
def serve(fake: FakeLLM) -> Iterator[FakeLLM]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
