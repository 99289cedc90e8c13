"""A small OpenAI-compatible chat server on loopback that can be told to misbehave, for the remote-backend tests.

The first path segment picks the behaviour, so one server serves all of them: a backend configured with
base URL `http://127.0.0.1:PORT/<mode>/v1` gets

- `ok`: a streamed (or plain) answer that cites the passage holding NEEDLE;
- `hang`: the request is read and never answered (the client's timeout);
- `stall`: the headers and the first words, then nothing (a timeout in the middle of the answer);
- `die`: the first words, then the line `STREAMING` on stdout, then nothing until the process is killed
  (run as a script: `python fault_llm_server.py [PORT]` prints `PORT <n>` and serves until killed);
- `cut`: the first words, then the connection is closed cleanly, with no finish_reason and no [DONE];
- `garbage-sse`: a 200 event stream whose events are not JSON;
- `garbage-json`: a 200 application/json body that is HTML;
- `garbage-bytes`: bytes that are not HTTP at all, then the connection closes;
- `html-500`: an HTTP 500 with an HTML page;
- `empty`: a stream that finishes at once with no text.

Every request's mode and body are recorded in `server.requests`.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NEEDLE = "crossing takes 35 minutes"
MODES = ("ok", "hang", "stall", "die", "cut", "garbage-sse", "garbage-json", "garbage-bytes", "html-500", "empty")
HANG_S = 30.0  # how long `hang` and `stall` keep a connection open (the tests' timeouts are far shorter)


def reply_for(messages: list[dict[str, Any]]) -> str:
    """The answer a good model would give: the sentence of the passage holding NEEDLE, cited."""
    prompt = str(messages[-1].get("content", "")) if messages else ""
    for line in prompt.splitlines():
        m = re.match(r"\[(\d+)\] ", line)
        if m and NEEDLE in line:
            return f"The crossing takes 35 minutes [{m.group(1)}]."
    return "I don't know."


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, announce: bool = False, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.announce = announce
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.closing = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-reply is what these modes are for

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, mode: str) -> str:
        assert mode in MODES, mode
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def start(self) -> FaultServer:
        threading.Thread(target=self.serve_forever, name="fault-llm", daemon=True).start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        mode, _, rest = self.path.lstrip("/").partition("/")
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        self.server.requests.append((mode, body))
        if rest != "v1/chat/completions" or mode not in MODES:
            self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        getattr(self, "mode_" + mode.replace("-", "_"))(body)

    # --- helpers ------------------------------------------------------------------------------------

    def send_json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def start_stream(self, close_delimited: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if close_delimited:  # the body ends when the connection does (no chunked framing to break)
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.chunked = not close_delimited

    def event(self, data: dict[str, Any] | str) -> None:
        raw = f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()
        if self.chunked:
            raw = f"{len(raw):x}\r\n".encode() + raw + b"\r\n"
        self.wfile.write(raw)
        self.wfile.flush()

    def end_chunks(self) -> None:
        if self.chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    @staticmethod
    def chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
        delta = {"content": content} if content is not None else {}
        return {
            "id": "chatcmpl-fault",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "fault",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def words(self, body: dict[str, Any]) -> list[str]:
        return re.findall(r"\S+\s*", reply_for(body.get("messages", [])))

    def wait(self) -> None:
        self.server.closing.wait(HANG_S)

    # --- modes --------------------------------------------------------------------------------------

    def mode_ok(self, body: dict[str, Any]) -> None:
        text = reply_for(body.get("messages", []))
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            self.send_json(200, {**self.chunk(None), "object": "chat.completion", "choices": [
                {"index": 0, "message": message, "finish_reason": "stop"}]})  # fmt: skip
            return
        self.start_stream()
        self.event(self.chunk(""))
        for word in self.words(body):
            self.event(self.chunk(word))
        self.event(self.chunk(None, "stop"))
        self.event({**self.chunk(None), "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7,
                                                                  "total_tokens": 16}})  # fmt: skip
        self.event("[DONE]")
        self.end_chunks()

    def mode_hang(self, body: dict[str, Any]) -> None:
        self.wait()

    def first_words(self, body: dict[str, Any], close_delimited: bool = False) -> None:
        self.start_stream(close_delimited)
        for word in self.words(body)[:3]:
            self.event(self.chunk(word))

    def mode_stall(self, body: dict[str, Any]) -> None:
        self.first_words(body)
        self.wait()

    def mode_die(self, body: dict[str, Any]) -> None:
        self.first_words(body)
        if self.server.announce:
            print("STREAMING", flush=True)
        self.wait()

    def mode_cut(self, body: dict[str, Any]) -> None:
        self.first_words(body, close_delimited=True)
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def mode_garbage_sse(self, body: dict[str, Any]) -> None:
        self.start_stream()
        self.event("{this is not json")
        self.event("<html>")
        self.end_chunks()

    def mode_garbage_json(self, body: dict[str, Any]) -> None:
        raw = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def mode_garbage_bytes(self, body: dict[str, Any]) -> None:
        self.wfile.write(b"\x00\xff\xfeSSH-2.0-OpenSSH not http at all\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def mode_html_500(self, body: dict[str, Any]) -> None:
        raw = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def mode_empty(self, body: dict[str, Any]) -> None:
        self.start_stream()
        self.event(self.chunk(None, "stop"))
        self.event("[DONE]")
        self.end_chunks()


if __name__ == "__main__":
    server = FaultServer(announce=True, port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"PORT {server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
