"""A scripted OpenAI-compatible chat server on 127.0.0.1 (free port) for backend tests. Bounded: every fault it can
inject is counted per prompt, sleeps are short, and it stops when the `openai_server` context manager exits.

The last user message steers it with directives (anything else in the text is echoed back):
  @@429*N     answer 429 (Retry-After from @@after=S, default 0) the first N times this prompt is seen
  @@500*N     answer 500 (its body echoes the Authorization header, as careless servers do) the first N times
  @@malformed*N   answer 200 with a body that is not JSON the first N times
  @@badshape*N    answer 200 with JSON lacking "choices" the first N times
  @@drop*N    close the connection without answering the first N times
  @@hang*N    sleep @@hang_s=S (default 1.0) before answering the first N times (to trip client timeouts)
  @@slow=S    sleep S seconds before every answer (latency)
  @@400       answer 400 every time
Use N = 99 for "always". A reply's text is "echo: <prompt without directives>"; usage counts words.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_DIRECTIVE = re.compile(r"@@(\w+)(?:\*(\d+))?(?:=([\d.]+))?")


@dataclass
class ServerLog:
    """What the server saw; read it after the client finished."""

    attempts: Counter = field(default_factory=Counter)  # prompt -> requests received
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # prompt -> monotonic arrival times
    auth_headers: set[str] = field(default_factory=set)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def openai_server() -> Iterator[tuple[str, ServerLog]]:
    """Yields (base_url ending in /v1, log)."""
    log = ServerLog()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            prompt = next((m["content"] for m in reversed(body.get("messages", [])) if m["role"] == "user"), "")
            with log.lock:
                log.attempts[prompt] += 1
                seen = log.attempts[prompt]
                log.arrivals.setdefault(prompt, []).append(time.monotonic())
                log.auth_headers.add(self.headers.get("Authorization", ""))
                log.bodies.append(body)
                log.in_flight += 1
                log.max_in_flight = max(log.max_in_flight, log.in_flight)
            try:
                self._answer(body, prompt, seen)
            finally:
                with log.lock:
                    log.in_flight -= 1

        def _answer(self, body: dict[str, Any], prompt: str, seen: int) -> None:
            d = {m.group(1): (int(m.group(2)) if m.group(2) else None, m.group(3)) for m in _DIRECTIVE.finditer(prompt)}

            def active(name: str) -> bool:
                return name in d and seen <= (d[name][0] or 0)

            def value(name: str, default: float) -> float:
                return float(d[name][1]) if name in d and d[name][1] else default

            time.sleep(value("slow", 0.0))
            if self.path != "/v1/chat/completions":
                return self._send(404, b'{"error": "not found"}')
            if "400" in d:
                return self._send(400, b'{"error": {"message": "bad request"}}')
            if active("429"):
                return self._send(429, b'{"error": "rate limited"}', {"Retry-After": f"{value('after', 0):g}"})
            if active("500"):
                return self._send(500, f"internal error; you sent {self.headers.get('Authorization')}".encode())
            if active("drop"):
                self.close_connection = True
                return None  # nothing written: the client sees the connection close
            if active("hang"):
                time.sleep(value("hang_s", 1.0))
            if active("malformed"):
                return self._send(200, b'{"choices": [{"message": {"content": "trunc')
            if active("badshape"):
                return self._send(200, b'{"object": "chat.completion"}')
            text = "echo: " + _DIRECTIVE.sub("", prompt).strip()
            stop = body.get("stop") or []
            finish = "stop"
            words = text.split()
            if len(words) > body.get("max_tokens", 1 << 30):
                text, finish = " ".join(words[: body["max_tokens"]]), "length"
            for s in stop:
                if s in text:
                    text = text[: text.index(s)]
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": finish}
            if body.get("logprobs"):
                k = int(body.get("top_logprobs") or 1)
                choice["logprobs"] = {"content": [
                    {"token": w, "logprob": -0.5, "top_logprobs": [{"token": f"{w}{j}" if j else w, "logprob": -0.5 - j}
                                                                   for j in range(k)]} for w in text.split()]}
            usage = {"prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
                     "completion_tokens": len(text.split())}
            return self._send(200, json.dumps({"object": "chat.completion", "choices": [choice], "usage": usage}).encode())

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
