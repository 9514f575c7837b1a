"""The one fake OpenAI-compatible chat server of the tests: 127.0.0.1, a free port, stopped when the `openai_server`
context manager exits. It answers from a script (`echo`, the default, or `judge_replies`, which answers like the official
judges) and injects faults steered by directives anywhere in the user messages; in judged-suite tests they ride inside the
model's answers, which the judge prompt quotes.

Fault vocabulary. `*N` = only the first N times these messages are seen (N = 99: always); no `*N` = every time:
  @@429*N @@500*N @@503*N @@400 @@401 @@403 @@404   answer that status (and any path but /v1/chat/completions: 404)
  @@after=S / @@after_ms=MS   send `Retry-After: S` / `retry-after-ms: MS` with it (429 without either: Retry-After 0)
  @@malformed*N   200 with a body that is not JSON;  @@badshape*N   200 with JSON lacking "choices"
  @@drop*N        close the connection without answering
  @@hang*N        sleep @@hang_s=S (default 1.0) before answering, to trip client timeouts
  @@slow=S        sleep S seconds before every answer
  @@noverdict     (judge_replies) a judgment with no verdict, rating or preference token
Every error body echoes the request's Authorization header, as careless servers do, so tests can check that the key
never leaks. `server.down = True` answers 503 to everything; `latency_s` delays every answer.

Replies: `echo` answers "echo: <prompt without directives>"; usage counts words; `max_tokens` cuts words (finish
"length"); `stop` cuts the text; with `logprobs` every word is one token at -0.5 with alternatives `<w>1`, `<w>2` ...
at -1.5, -2.5 ... A script may also return the tokens itself: a list of per-token alternatives, the first generated.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Tokens = list[list[tuple[str, float]]]
Script = Callable[[dict[str, Any]], "str | Tokens"]
"""request body -> reply text, or the reply's tokens with their top alternatives (the first one generated)."""

_DIRECTIVE = re.compile(r"@@(\w+)(?:\*(\d+))?(?:=([\d.]+))?")
_STATUS = {"400": "bad request", "401": "invalid API key", "403": "model not allowed", "404": "no such model",
           "429": "rate limited", "500": "internal error", "503": "overloaded"}
ARENA_SYSTEM_MARK = "assistant A's answer and assistant B's answer"


def echo(body: dict[str, Any]) -> str:
    return "echo: " + _DIRECTIVE.sub("", last_user(body)).strip()


def judge_replies(body: dict[str, Any]) -> str | Tokens:
    """What the official judges would say: Arena-Hard "A>B", MT-Bench rating 6, AlpacaEval "M" at p = 0.8 ("m" 0.2)."""
    user, msgs = users(body), body.get("messages") or [{}]
    if body.get("logprobs"):
        return [[("The", -0.1)]] if "@@noverdict" in user else [[("M", -0.2231), ("m", -1.6094)]]
    if "@@noverdict" in user:
        return "Both answers have merit."
    if ARENA_SYSTEM_MARK in msgs[0].get("content", ""):
        return "My own answer first... My final verdict is: [[A>B]]"
    return "Helpful. Rating: [[6]]"


def users(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body.get("messages", []) if m.get("role") == "user")


def last_user(body: dict[str, Any]) -> str:
    return next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")


@dataclass
class FakeServer:
    """What the server saw (read it after the client finished) and the switches a test may flip while it runs."""

    url: str = ""
    latency_s: float = 0.0
    down: bool = False
    attempts: Counter = field(default_factory=Counter)  # last user message -> requests received
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # last user message -> monotonic arrival times
    auth_headers: set[str] = field(default_factory=set)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    seen: Counter = field(default_factory=Counter)  # whole message list -> requests (the fault counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return len(self.bodies)


@contextlib.contextmanager
def openai_server(script: Script = echo, latency_s: float = 0.0) -> Iterator[FakeServer]:
    state = FakeServer(latency_s=latency_s)
    handler = type("Handler", (_Handler,), {"state": state, "script": staticmethod(script)})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up has left: not news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One request: count it, then answer per the directives (subclassed per server with `state` and `script`)."""

    state: FakeServer
    script: Script
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, +40 ms per answer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        prompt, state = last_user(body), self.state
        with state.lock:
            state.attempts[prompt] += 1
            state.seen[json.dumps(body.get("messages"))] += 1
            seen = state.seen[json.dumps(body.get("messages"))]
            state.arrivals.setdefault(prompt, []).append(time.monotonic())
            state.auth_headers.add(self.headers.get("Authorization", ""))
            state.bodies.append(body)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        self._answered = False
        try:
            self._answer(body, users(body), seen)
        finally:
            self._done()

    def _done(self) -> None:
        """Leave the in-flight count once, before the last byte goes out (the client may send its next request
        as soon as it has read this answer)."""
        if not self._answered:
            self._answered = True
            with self.state.lock:
                self.state.in_flight -= 1

    def _answer(self, body: dict[str, Any], text: str, seen: int) -> None:
        d = {m.group(1): (int(m.group(2)) if m.group(2) else None, m.group(3)) for m in _DIRECTIVE.finditer(text)}

        def active(name: str) -> bool:
            return name in d and (d[name][0] is None or seen <= d[name][0])

        def value(name: str, default: float) -> float:
            return float(d[name][1]) if name in d and d[name][1] else default

        time.sleep(self.state.latency_s + value("slow", 0.0))
        if self.path != "/v1/chat/completions":
            return self._error(404)
        if self.state.down:
            return self._error(503)
        wait = {"retry-after-ms": f"{value('after_ms', 0):g}"} if "after_ms" in d else \
            {"Retry-After": f"{value('after', 0):g}"} if "after" in d else {}
        for status in ("400", "401", "403", "404", "429", "500", "503"):
            if active(status):
                return self._error(int(status), wait or ({"Retry-After": "0"} if status == "429" else {}))
        if active("drop"):
            self.close_connection = True
            return None  # nothing written: the client sees the connection close
        if active("hang"):
            time.sleep(value("hang_s", 1.0))
        if active("malformed"):
            return self._send(200, b'{"choices": [{"message": {"content": "trunc')
        if active("badshape"):
            return self._send(200, b'{"object": "chat.completion"}')
        return self._send(200, json.dumps(_completion(body, self.script(body))).encode())

    def _error(self, status: int, headers: dict[str, str] | None = None) -> None:
        message = f"{_STATUS[str(status)]}; you sent {self.headers.get('Authorization')}"
        self._send(status, json.dumps({"error": {"message": message, "code": status}}).encode(), headers)

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self._done()
        self.end_headers()
        self.wfile.write(payload)


def _completion(body: dict[str, Any], reply: str | Tokens) -> dict[str, Any]:
    """An OpenAI chat.completion for `reply`, honouring max_tokens, stop and logprobs/top_logprobs."""
    finish = "stop"
    if isinstance(reply, str):
        words = reply.split()
        if len(words) > body.get("max_tokens", 1 << 30):
            words, finish = words[: body["max_tokens"]], "length"
        text = " ".join(words)
        for s in body.get("stop") or []:
            if s in text:
                text = text[: text.index(s)]
        k = int(body.get("top_logprobs") or 1)
        tokens = [[(f"{w}{j}" if j else w, -0.5 - j) for j in range(k)] for w in text.split()]
    else:
        tokens, text = reply, " ".join(t[0][0] for t in reply)
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    if body.get("logprobs"):
        choice["logprobs"] = {"content": [{"token": t[0][0], "logprob": t[0][1],
                                           "top_logprobs": [{"token": a, "logprob": lp} for a, lp in t]}
                                          for t in tokens]}
    usage = {"prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])),
             "completion_tokens": len(text.split())}
    return {"object": "chat.completion", "choices": [choice], "usage": usage}
