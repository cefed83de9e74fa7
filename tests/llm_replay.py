"""A scripted OpenAI-compatible chat server on 127.0.0.1 that answers from the request's own ids."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BEHAVIOURS = ("ok", "fenced", "malformed", "missing", "invented", "reorder", "text", "429", "500", "hang")
_REQUIRED = re.compile(r"^Required ids: (\[.*\])$", re.M)


def default_labeller(segment_id: str) -> dict[str, Any]:
    return {"id": segment_id, "speaker": "Mrs. Bennet", "emotion": "excited", "intensity": 0.7}


class ReplayServer:
    """Answers POST /v1/chat/completions with the next scripted behaviour ("ok" once the script runs out)."""

    def __init__(self, script: list[str] = (), *, schema_supported: bool = True, delay_s: float = 0.0,
                 hang_s: float = 1.5, labeller: Callable[[str], dict[str, Any]] = default_labeller,
                 characters: list[dict[str, Any]] | None = None):
        self.script = list(script)
        self.schema_supported, self.delay_s, self.hang_s, self.labeller = schema_supported, delay_s, hang_s, labeller
        self.characters = characters if characters is not None else [
            {"name": "Mrs. Bennet", "aliases": ["his lady"], "gender": "female", "description": "an anxious mother"}]
        self.log: list[dict[str, Any]] = []  # every request: its body and the behaviour it got
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ReplayServer:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def behaviours(self) -> list[str]:
        return [entry["behaviour"] for entry in self.log]

    def _next(self, body: dict[str, Any]) -> str:
        with self._lock:
            if body.get("response_format", {}).get("type") == "json_schema" and not self.schema_supported:
                behaviour = "400"
            else:
                behaviour = self.script.pop(0) if self.script else "ok"
            self.log.append({"body": body, "behaviour": behaviour})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return behaviour

    def content(self, behaviour: str, body: dict[str, Any]) -> str:
        """Return the assistant message the model would have sent for `behaviour`."""
        ids = json.loads(_REQUIRED.search(body["messages"][-1]["content"]).group(1))
        segments = [self.labeller(i) for i in ids]
        if behaviour == "missing":
            segments = segments[:-1]
        elif behaviour == "invented":
            segments.append({**segments[-1], "id": "c99-p0001-s01"})
        elif behaviour == "reorder":
            segments = segments[::-1] if len(segments) > 1 else segments
        elif behaviour == "text":
            segments[0] = {**segments[0], "text": "“My dear Mr. Bennet, have you heard the news?”"}
        answer = json.dumps({"segments": segments, "characters": self.characters}, indent=1)
        if behaviour == "malformed":
            return answer[: len(answer) // 2]
        if behaviour == "fenced":
            return f"```json\n{answer}\n```"
        return answer

    def _handler(self):
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                behaviour = replay._next(body)
                try:
                    self._answer(behaviour, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with replay._lock:
                        replay.in_flight -= 1

            def _answer(self, behaviour: str, body: dict[str, Any]) -> None:
                if behaviour == "hang":
                    time.sleep(replay.hang_s)
                    return
                time.sleep(replay.delay_s)
                if behaviour in ("429", "500", "400"):
                    messages = {"429": "Rate limit reached; try again", "500": "The server had an error",
                                "400": "response_format json_schema is not supported"}
                    headers = {"Retry-After": "0"} if behaviour == "429" else {}
                    self._send(int(behaviour), {"error": {"message": messages[behaviour], "type": "error"}}, headers)
                    return
                content = replay.content(behaviour, body)
                self._send(200, {
                    "id": f"chatcmpl-replay-{len(replay.log)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", ""),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop", "logprobs": None}],
                    "usage": {"prompt_tokens": len(body["messages"][-1]["content"]) // 4,
                              "completion_tokens": len(content) // 4,
                              "total_tokens": (len(body["messages"][-1]["content"]) + len(content)) // 4}})

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler
