"""Slack on loopback: a stand-in for the Web API that records messages, and the callback's Function URL.

slack_sdk's WebClient takes a base_url, so the handlers talk to the stand-in exactly as they
talk to Slack; the Function URL server turns HTTP requests into the event Lambda gives the
callback handler, so tests and the demo press buttons over real HTTP with real signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default), at every test's teardown.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class SlackStandIn(_Server):
    """Answers chat.postMessage and chat.update like Slack, and keeps what it was sent."""

    def __init__(self, token: str) -> None:
        super().__init__(_SlackApiHandler)
        self.token = token
        self.messages: dict[str, dict[str, Any]] = {}  # ts -> latest version of the message
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ts = itertools.count(1)
        self.lock = threading.Lock()

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def post(self, method: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append((method, fields))
            channel = str(fields.get("channel", ""))
            if method == "chat.postMessage":
                ts = f"{int(time.time())}.{next(self._ts):06d}"
                self.messages[ts] = {**fields, "channel": "C" + channel.lstrip("#").upper().replace("-", "")[:10], "ts": ts,
                                     "first_version": fields.get("blocks")}
                return {"ok": True, "channel": self.messages[ts]["channel"], "ts": ts}
            if method == "chat.update":
                ts = str(fields.get("ts"))
                if ts not in self.messages:
                    return {"ok": False, "error": "message_not_found"}
                self.messages[ts] = {**self.messages[ts], **fields}
                return {"ok": True, "channel": channel, "ts": ts}
            return {"ok": False, "error": "unknown_method"}


class _SlackApiHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server interface
        server: SlackStandIn = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        if self.headers.get("Authorization") != f"Bearer {server.token}":
            answer: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
        else:
            fields = json.loads(raw) if "json" in (self.headers.get("Content-Type") or "") else {
                k: v[0] for k, v in parse_qs(raw).items()}
            for key in ("blocks", "attachments"):
                if isinstance(fields.get(key), str):
                    fields[key] = json.loads(fields[key])
            answer = server.post(self.path.rsplit("/", 1)[-1], fields)
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class FunctionUrl(_Server):
    """Serves a Lambda handler as a Function URL does (payload format 2.0)."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        super().__init__(_FunctionUrlHandler)
        self.handler = handler


class _FunctionUrlHandler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        server: FunctionUrl = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        event = {
            "version": "2.0",
            "rawPath": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "requestContext": {"http": {"method": self.command, "path": self.path}},
            "body": base64.b64encode(raw).decode(),
            "isBase64Encoded": True,
        }
        response = server.handler(event, None)
        data = str(response.get("body", "")).encode()
        self.send_response(int(response.get("statusCode", 200)))
        for key, value in (response.get("headers") or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _serve  # noqa: N815
    do_GET = _serve  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


def button_press_body(approval_id: str, action: str, user_id: str, user_name: str = "approver") -> str:
    """The form body Slack posts when a button is pressed (block_actions)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name},
        "actions": [{"action_id": action, "block_id": "decision", "value": approval_id, "type": "button"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def signed_headers(body: str, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


def post(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
