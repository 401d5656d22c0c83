"""The load generator: a small asyncio HTTP/1.1 client with keep-alive, and the scenarios.

Written on asyncio streams rather than a client library so that one core of load generation
outpaces one core of server by a wide margin (a full-featured client spends more CPU per request
than a fast server does).  It speaks just what the bench needs: Content-Length and chunked
bodies, keep-alive with reconnect when the server closes, cookies by name.

A scenario is one coroutine per virtual user, each with its own connection, running until the
deadline; each records the latency of its unit of work (a request, a refresh, a whole login flow).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet


class BenchError(Exception):
    """A response that is not what a correct provider answers (counted as an error)."""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def json(self) -> dict:
        return json.loads(self.body)


class Connection:
    """One keep-alive HTTP/1.1 connection to host:port (reopened when the server closes it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.host_header = f"{host}:{port}"

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> Response:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            fresh = self.writer is None
            if fresh:
                await self._open()
            try:
                self.writer.write(raw)
                return await self._read_response(method)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.close()
                # a kept-alive connection the server had already closed: retry a GET once on a
                # new one; a POST is never sent twice (a spent code or captcha would fail the
                # replay), and a failure on a fresh connection is real
                if fresh or attempt == 2 or method != "GET":
                    raise BenchError(f"connection failed: {exc!r}") from None
        raise AssertionError("unreachable")

    async def _read_response(self, method: str) -> Response:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = []
        for line in header_lines:
            key, _, value = line.partition(":")
            headers.append((key.strip().lower(), value.strip()))
        response = Response(status, headers, b"")
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif (length := response.header("content-length")) is not None:
            body = await self.reader.readexactly(int(length))
        elif (response.header("transfer-encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(chunks)
        else:  # body until close
            body = await self.reader.read()
            self.close()
        response.body = body
        if (response.header("connection") or "").lower() == "close":
            self.close()
        return response


# -- what the provider under test looks like ---------------------------------------------------------
@dataclass
class Target:
    name: str  # "ours" or "peer"
    host: str
    port: int
    web_client: tuple[str, str]
    service_client: tuple[str, str]
    redirect_uri: str
    usernames: list[str]
    password: str
    captcha: str = ""
    extra_authorize: dict[str, str] = field(default_factory=dict)  # peer: prompt=consent
    metadata: dict = field(default_factory=dict)
    jwks: KeySet | None = None

    def path(self, url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def basic(client: tuple[str, str]) -> str:
        return "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()

    async def discover(self) -> None:
        conn = Connection(self.host, self.port)
        try:
            resp = await conn.request("GET", "/.well-known/openid-configuration")
            if resp.status != 200:
                raise BenchError(f"discovery answered {resp.status}")
            self.metadata = resp.json()
            resp = await conn.request("GET", self.path(self.metadata["jwks_uri"]))
            self.jwks = KeySet.import_key_set(resp.json())
        finally:
            conn.close()


class Browser:
    """A user agent for one login: its own cookies, the connection of its virtual user."""

    _FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)
    _ACTION = re.compile(r'<form\b[^>]*\baction="([^"]*)"', re.I)
    _INPUT = re.compile(r"<input\b[^>]*>", re.I)
    _ATTR = re.compile(r'(\w+)="([^"]*)"')

    def __init__(self, conn: Connection, target: Target) -> None:
        self.conn = conn
        self.target = target
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, url: str, form: dict | None = None) -> Response:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        resp = await self.conn.request(method, self.target.path(url), headers, body)
        for raw in resp.header_all("set-cookie"):
            pair, *attrs = raw.split(";")
            name, _, value = pair.strip().partition("=")
            expired = any(a.strip().lower() in ("max-age=0",) or a.strip().lower().startswith("expires=thu, 01 jan 1970")
                          for a in attrs)
            if expired or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp

    def login_form(self, page: Response, base: str) -> tuple[str, dict[str, str]]:
        """The form with a password field: its action and its fields, filled in."""
        html = page.body.decode()
        for form_html in self._FORM.findall(html):
            if 'type="password"' not in form_html:
                continue
            action = unescape(self._ACTION.search(form_html).group(1))
            fields = {}
            for tag in self._INPUT.findall(form_html):
                attrs = dict(self._ATTR.findall(tag))
                if "name" in attrs:
                    fields[attrs["name"]] = unescape(attrs.get("value", ""))
            return urljoin(base, action), fields
        raise BenchError(f"no login form on the page (status {page.status})")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class FlowResult:
    tokens: dict
    token_latency: float


async def full_flow(conn: Connection, target: Target, username: str) -> FlowResult:
    """authorize → login form → code → token → ID token verified → userinfo."""
    meta = target.metadata
    browser = Browser(conn, target)
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    query = {
        "response_type": "code", "client_id": target.web_client[0], "redirect_uri": target.redirect_uri,
        "scope": "openid profile offline_access", "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256", **target.extra_authorize,
    }
    url = meta["authorization_endpoint"] + "?" + urlencode(query)
    resp = await browser.request("GET", url)
    code = None
    logged_in = False
    for _ in range(8):  # follow redirects; fill the login form once
        if resp.status in (301, 302, 303, 307):
            location = urljoin(url, resp.header("location"))
            if location.startswith(target.redirect_uri):
                params = parse_qs(urlsplit(location).query)
                if params.get("state") != [state] or "code" not in params:
                    raise BenchError(f"bad redirect to the client: {location[:200]}")
                code = params["code"][0]
                break
            url = location
            resp = await browser.request("GET", url)
        elif resp.status == 200 and not logged_in:
            action, fields = browser.login_form(resp, url)
            fields.update(username=username, password=target.password)
            if "captcha" in fields:
                fields["captcha"] = target.captcha
            url = action
            resp = await browser.request("POST", action, fields)
            logged_in = True
        else:
            raise BenchError(f"flow stuck at {url[:120]}: {resp.status} {resp.body[:200]!r}")
    if code is None:
        raise BenchError("no code after 8 steps")

    started = time.perf_counter()
    token_resp = await conn.request(
        "POST", target.path(meta["token_endpoint"]),
        {"Authorization": Target.basic(target.web_client), "Content-Type": "application/x-www-form-urlencoded"},
        urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": target.redirect_uri,
                   "code_verifier": verifier}).encode(),
    )
    token_latency = time.perf_counter() - started
    if token_resp.status != 200:
        raise BenchError(f"token endpoint answered {token_resp.status}: {token_resp.body[:200]!r}")
    tokens = token_resp.json()
    claims = verify_id_token(target, tokens["id_token"], nonce)
    info = await conn.request("GET", target.path(meta["userinfo_endpoint"]),
                              {"Authorization": f"Bearer {tokens['access_token']}"})
    if info.status != 200 or info.json().get("sub") != claims["sub"]:
        raise BenchError(f"userinfo answered {info.status}: {info.body[:200]!r}")
    if "refresh_token" not in tokens:
        raise BenchError("no refresh token for offline_access")
    return FlowResult(tokens, token_latency)


def verify_id_token(target: Target, id_token: str, nonce: str) -> dict:
    try:
        token = jwt.decode(id_token, target.jwks, algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": target.metadata["issuer"]},
            aud={"essential": True, "value": target.web_client[0]},
            nonce={"essential": True, "value": nonce},
            exp={"essential": True},
        ).validate(token.claims)
    except Exception as exc:  # noqa: BLE001  (any failure of the check is a bench error)
        raise BenchError(f"ID token rejected: {exc!r}") from None
    return token.claims


# -- running an operation ---------------------------------------------------------------------------
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    token_latencies: list[float] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, exc: Exception) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(str(exc)[:300])


class Operation:
    """One measured operation: ``setup`` per virtual user (not timed), then ``unit`` in a loop."""

    name = ""
    requests_per_unit = 1

    def __init__(self, target: Target) -> None:
        self.target = target

    async def setup(self, conn: Connection, vu: int) -> object:
        return None

    async def unit(self, conn: Connection, state: object, tally: Tally) -> object:
        raise NotImplementedError


class Discovery(Operation):
    name = "discovery+jwks"
    requests_per_unit = 2

    async def unit(self, conn, state, tally):
        for url in (self.target.metadata["issuer"] + "/.well-known/openid-configuration",
                    self.target.metadata["jwks_uri"]):
            resp = await conn.request("GET", self.target.path(url))
            if resp.status != 200 or not resp.body.startswith(b"{"):
                raise BenchError(f"{url} answered {resp.status}")
        return state


class ClientCredentials(Operation):
    name = "client_credentials"

    async def setup(self, conn, vu):
        return (
            self.target.path(self.target.metadata["token_endpoint"]),
            {"Authorization": Target.basic(self.target.service_client),
             "Content-Type": "application/x-www-form-urlencoded"},
            b"grant_type=client_credentials",
        )

    async def unit(self, conn, state, tally):
        path, headers, body = state
        resp = await conn.request("POST", path, headers, body)
        if resp.status != 200 or b'"access_token"' not in resp.body:
            raise BenchError(f"client_credentials answered {resp.status}: {resp.body[:200]!r}")
        return state


async def flow_for_setup(conn: Connection, target: Target, vu: int) -> FlowResult:
    """A login flow that hands a virtual user its tokens; tried up to three times."""
    for attempt in range(3):
        try:
            return await full_flow(conn, target, target.usernames[vu % len(target.usernames)])
        except BenchError:
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class RefreshChain(Operation):
    """Each virtual user rotates its own refresh token: every answer's token is used next."""

    name = "refresh_token (rotated)"

    async def setup(self, conn, vu):
        return (await flow_for_setup(conn, self.target, vu)).tokens["refresh_token"]

    async def unit(self, conn, refresh_token, tally):
        resp = await conn.request(
            "POST", self.target.path(self.target.metadata["token_endpoint"]),
            {"Authorization": Target.basic(self.target.web_client),
             "Content-Type": "application/x-www-form-urlencoded"},
            urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token}).encode(),
        )
        if resp.status != 200:
            raise BenchError(f"refresh answered {resp.status}: {resp.body[:200]!r}")
        new = resp.json().get("refresh_token")
        if not new or new == refresh_token:
            raise BenchError("refresh token not rotated")
        return new


class UserInfo(Operation):
    name = "userinfo (bearer)"

    async def setup(self, conn, vu):
        result = await flow_for_setup(conn, self.target, vu)
        return {"Authorization": f"Bearer {result.tokens['access_token']}"}

    async def unit(self, conn, headers, tally):
        resp = await conn.request("GET", self.target.path(self.target.metadata["userinfo_endpoint"]), headers)
        if resp.status != 200 or b'"sub"' not in resp.body:
            raise BenchError(f"userinfo answered {resp.status}: {resp.body[:200]!r}")
        return headers


class LoginFlow(Operation):
    name = "full login flow (argon2id)"
    requests_per_unit = 7  # authorize, login page, login POST, authorize again, token, (ID token), userinfo

    async def setup(self, conn, vu):
        return vu

    async def unit(self, conn, vu, tally):
        result = await full_flow(conn, self.target, self.target.usernames[vu % len(self.target.usernames)])
        tally.token_latencies.append(result.token_latency)
        return vu


OPERATIONS: dict[str, type[Operation]] = {
    "discovery": Discovery,
    "client_credentials": ClientCredentials,
    "refresh": RefreshChain,
    "userinfo": UserInfo,
    "flow": LoginFlow,
}


async def run_operation(op: Operation, concurrency: int, warmup: float, duration: float,
                        on_measure_start, on_measure_end) -> tuple[Tally, float]:
    """Set every virtual user up, run ``warmup`` seconds unmeasured, then ``duration`` measured.
    ``on_measure_start/end`` are called at the window's edges (the driver samples CPU there)."""
    conns = [Connection(op.target.host, op.target.port) for _ in range(concurrency)]
    states = await asyncio.gather(*(op.setup(conns[i], i) for i in range(concurrency)))
    tally = Tally()
    loop = asyncio.get_running_loop()
    measuring = False
    stop_at = loop.time() + warmup + duration

    async def virtual_user(i: int) -> None:
        state = states[i]
        while loop.time() < stop_at:
            started = time.perf_counter()
            try:
                state = await op.unit(conns[i], state, tally)
            except (BenchError, KeyError, ValueError) as exc:
                if measuring:
                    tally.error(exc)
                if isinstance(op, RefreshChain):
                    return  # a broken chain cannot go on
                conns[i].close()
                continue
            if measuring:
                tally.latencies.append(time.perf_counter() - started)
                tally.requests += op.requests_per_unit

    users = [asyncio.ensure_future(virtual_user(i)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    # the window: every unit that completes inside it counts (latency of units begun in warm-up too)
    measuring = True
    on_measure_start()
    window_start = time.perf_counter()
    await asyncio.sleep(duration)
    measuring = False
    elapsed = time.perf_counter() - window_start
    on_measure_end()
    await asyncio.gather(*users)
    for conn in conns:
        conn.close()
    return tally, elapsed
