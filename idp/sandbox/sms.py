"""The sandbox SMS gateway: the HTTP contract ``HttpSmsSender`` speaks, keeping the messages it
is given in memory instead of delivering them.

``POST /v1/messages`` with ``Authorization: Bearer <key>`` and ``{request_id, to, text}`` answers
``202 {message_id}``; a repeated request id is not sent twice (same ``message_id``).
``GET /v1/messages?to=…`` lists what was "delivered", newest first.  Run it with
``idp sandbox sms --port 8602`` and point the provider at it with
``IDP_SMS_BACKEND=http IDP_SMS_URL=http://127.0.0.1:8602/v1/messages IDP_SMS_KEY=…``.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

MESSAGES_PATH = "/v1/messages"


class SmsGatewaySandbox:
    def __init__(self, key: str, *, latency: float = 0.0, fail_with: int | None = None) -> None:
        self.key = key
        self.latency = latency
        self.fail_with = fail_with  # answer every send with this HTTP status (gateway trouble)
        self.messages: list[dict] = []
        self._by_request: dict[str, str] = {}
        self._lock = threading.Lock()
        self.url_map = Map([
            Rule(MESSAGES_PATH, endpoint="send", methods=["POST"]),
            Rule(MESSAGES_PATH, endpoint="list", methods=["GET"]),
        ])

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed) as exc:
            return _json({"error": "not_found"}, exc.code or 404)(environ, start_response)
        if not self._authorised(request):
            response = _json({"error": "unauthorized"}, 401)
        else:
            response = getattr(self, f"_{endpoint}")(request)
        return response(environ, start_response)

    def _authorised(self, request: Request) -> bool:
        presented = request.headers.get("Authorization", "")
        return hmac.compare_digest(presented.encode(), f"Bearer {self.key}".encode())

    def _send(self, request: Request) -> Response:
        try:
            payload = json.loads(request.get_data())
            request_id, to, text = payload["request_id"], payload["to"], payload["text"]
        except (ValueError, KeyError, TypeError):
            return _json({"error": "invalid_request"}, 400)
        if not all(isinstance(v, str) and v for v in (request_id, to, text)):
            return _json({"error": "invalid_request"}, 400)
        if self.latency:
            time.sleep(self.latency)
        if self.fail_with:
            return _json({"error": "gateway_error"}, self.fail_with)
        with self._lock:
            if request_id in self._by_request:
                return _json({"message_id": self._by_request[request_id]}, 202)
            message_id = secrets.token_hex(8)
            self._by_request[request_id] = message_id
            self.messages.append({"message_id": message_id, "to": to, "text": text, "at": time.time()})
        return _json({"message_id": message_id}, 202)

    def _list(self, request: Request) -> Response:
        to = request.args.get("to")
        with self._lock:
            found = [m for m in reversed(self.messages) if to is None or m["to"] == to]
        return _json({"messages": found})


def _json(data: dict, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status, content_type="application/json; charset=utf-8")
