"""The part of our signed HTTP contract every sandbox platform shares (the bank, the enterprise
registry): route a request, refuse one that is unsigned, stale, replayed or incomplete, and sign
the answer — so a sandbox holds only its fictitious records and its outcomes."""

from __future__ import annotations

import json
import threading
import time

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from ..services.verification.bank import (
    MAX_CLOCK_SKEW,
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_signature,
    response_signature,
    signature_matches,
)


class SignedPlatform:
    """A WSGI app whose ``url_map`` endpoints are its ``_<endpoint>`` methods."""

    url_map: Map

    def __init__(self, secret: str, *, latency: float = 0.0, clock=time.time) -> None:
        self.secret = secret
        self.latency = latency
        self.clock = clock
        self._seen: dict[str, float] = {}  # request id → when it may be forgotten
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request)
        except (NotFound, MethodNotAllowed) as exc:
            response = json_response({"error": "not_found" if isinstance(exc, NotFound) else "method_not_allowed"},
                                     exc.code)
        except HTTPException as exc:
            response = json_response({"error": "bad_request"}, exc.code or 400)
        return response(environ, start_response)

    def _signed_request(self, request: Request, required: tuple[str, ...]) -> tuple[dict | None, Response | None]:
        """The request's JSON values when it is signed, fresh, first seen and complete; else the
        refusal to send.  The simulated latency comes after these checks, as a platform's would."""
        body = request.get_data(cache=True)
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        request_id = request.headers.get(REQUEST_ID_HEADER, "")
        expected = request_signature(self.secret, "POST", request.path, timestamp, request_id, body)
        if not request_id or not signature_matches(expected, request.headers.get(SIGNATURE_HEADER)):
            return None, json_response({"error": "invalid_signature"}, 401)
        now = self.clock()
        if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
            return None, json_response({"error": "stale_request"}, 401)
        if not self._first_use(request_id, now):
            return None, json_response({"error": "replayed_request"}, 409)
        try:
            payload = json.loads(body)
            values = {k: payload[k] for k in required}
        except (ValueError, KeyError, TypeError):
            return None, json_response({"error": "invalid_request"}, 400)
        if values["request_id"] != request_id or not all(isinstance(v, str) for v in values.values()):
            return None, json_response({"error": "invalid_request"}, 400)
        if self.latency:
            time.sleep(self.latency)
        return values, None

    def _signed_answer(self, request_id: str, data: dict) -> Response:
        answer = json.dumps({"request_id": request_id, **data}).encode()
        answered_at = str(int(self.clock()))
        response = Response(answer, 200, content_type="application/json")
        response.headers[TIMESTAMP_HEADER] = answered_at
        response.headers[SIGNATURE_HEADER] = response_signature(self.secret, 200, answered_at, request_id, answer)
        return response

    def _first_use(self, request_id: str, now: float) -> bool:
        with self._lock:
            for seen, forget_at in list(self._seen.items()):
                if forget_at < now:
                    del self._seen[seen]
            if request_id in self._seen:
                return False
            self._seen[request_id] = now + 2 * MAX_CLOCK_SKEW
            return True


def json_response(data: dict, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json")
