"""Settings: one class per environment, every value overridable by an ``IDP_<NAME>`` variable.

Defaults are grouped here and nowhere else (token lifetimes, limits, adapters), the way node
``oidc-provider`` keeps its defaults in one documented place.  Development-only conveniences
(SQLite, in-process Redis, a fixed captcha, the SMS outbox) warn loudly and production refuses them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says which and how to fix it."""


class BaseConfig:
    ENV_NAME = "base"

    # -- storage ---------------------------------------------------------------------------
    DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'instance' / 'idp.sqlite'}"
    REDIS_URL = ""  # empty: an in-process fakeredis server (one process only)
    KEYS_DIR = str(PROJECT_ROOT / "keys")

    # -- storage under faults (seconds): a hung server must cost a request seconds, not minutes --
    DATABASE_CONNECT_TIMEOUT = 3  # libpq connect_timeout, per host of a multi-host URL (min 2)
    DATABASE_STATEMENT_TIMEOUT = 5.0  # server-side statement_timeout; the client gives up 1 s later
    DATABASE_POOL_TIMEOUT = 3.0  # waiting for a free pooled connection
    DATABASE_TCP_USER_TIMEOUT = 5.0  # unacknowledged data on the socket (a dead network path)
    DATABASE_KEEPALIVES_IDLE = 30  # TCP keepalive probes on idle connections (idle, then every 10 s)
    REDIS_SOCKET_TIMEOUT = 1.0  # a command without an answer (a frozen Redis) fails after this
    REDIS_CONNECT_TIMEOUT = 1.0
    READY_TIMEOUT = 1.0  # /readyz: each dependency's check

    # -- identity of the provider -------------------------------------------------------------
    ISSUER = "http://127.0.0.1:5000"
    SECRET_KEY = ""
    ACCESS_TOKEN_ALG = "RS256"  # RS256 or ES256: what access tokens are signed with (ID tokens: the client's alg)

    # -- personal data -------------------------------------------------------------------------
    PII_CIPHER = "aes"  # aes (AES-256-GCM + HMAC-SHA256) or sm4 (SM4-GCM + HMAC-SM3)
    PII_KEY = ""  # hex or base64 of 32 bytes; empty: keys/pii.key, generated on first start

    # -- lifetimes (seconds) -------------------------------------------------------------------
    AUTHORIZATION_CODE_LIFETIME = 60
    ACCESS_TOKEN_LIFETIME = 600
    ID_TOKEN_LIFETIME = 600
    REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
    SESSION_IDLE_TIMEOUT = 30 * 60
    SESSION_ABSOLUTE_LIFETIME = 12 * 3600
    CONSENT_LIFETIME = 365 * 24 * 3600
    ADMIN_MAX_AUTH_AGE = 30 * 60

    # -- tokens and protocol ---------------------------------------------------------------------
    NONCE_TTL = 24 * 3600  # a nonce spent by an authorization code is refused again for this long
    CLIENT_ASSERTION_JTI_TTL = 600  # private_key_jwt: an assertion's jti is single-use for this long
    # failed client authentications at the token endpoint per client_id and IP; counted on
    # failure only, so a client that authenticates pays nothing for the limit
    TOKEN_CLIENT_AUTH_FAILURES = 10
    TOKEN_CLIENT_AUTH_FAILURE_WINDOW = 300  # seconds
    BACKCHANNEL_LOGOUT_TIMEOUT = 3.0  # seconds for each relying system's back-channel logout call
    LOGOUT_TOKEN_LIFETIME = 120  # exp of a back-channel logout token
    PAR_REQUEST_URI_LIFETIME = 90  # a pushed request's request_uri must be opened within this (expires_in)
    PAR_CLAIMED_LIFETIME = 3600  # a pushed request a browser opened stays usable by it through login
    REQUEST_OBJECT_LEEWAY = 30  # clock skew allowed on a request object's exp / nbf / iat
    REQUEST_OBJECT_MAX_LIFETIME = 600  # a request object's exp at most this far ahead; its jti single-use that long
    FRONTCHANNEL_LOGOUT_WAIT = 5  # seconds the logout page waits for front-channel logout pages before going on
    DPOP_IAT_WINDOW = 60  # a DPoP proof's iat may be this many seconds before or after now
    DPOP_REQUIRE_NONCE = False  # DPoP proofs must carry a nonce from the DPoP-Nonce header
    DPOP_NONCE_LIFETIME = 300  # a DPoP nonce is accepted at least this long, at most twice it
    CLIENT_CACHE_SECONDS = 5.0  # another process may use a changed client's old settings this long
    # how soon a process signs with a key rotated elsewhere (it re-reads the key index this
    # often); also the JWKS max-age, so a relying system's cached JWKS never misses a signing key
    SIGNING_KEYS_RECHECK_SECONDS = 5
    DISCOVERY_MAX_AGE = 300  # Cache-Control of the discovery document (settings change it only)

    # -- the audit buffer: events of operations that write nothing else (services/audit/stream.py) --
    AUDIT_BUFFER_MAX_LENGTH = 1_000_000  # events waiting in the Redis stream; beyond it they go to PostgreSQL directly
    AUDIT_DRAIN_BATCH = 500  # events a drainer INSERTs per transaction
    AUDIT_DRAIN_BLOCK = 0.2  # seconds a drainer waits for new events (below REDIS_SOCKET_TIMEOUT)
    AUDIT_DRAIN_RECLAIM_IDLE = 30.0  # seconds an event delivered to a drainer waits unacknowledged before another claims it
    AUDIT_DRAIN_IN_PROCESS = False  # a drainer thread in the web process itself (development, the demo)
    AUDIT_DRAIN_ACK_DELAY = 0.0  # tests only: seconds between a batch's commit and its acknowledgement

    # -- brute force ---------------------------------------------------------------------------
    LOCKOUT_THRESHOLD = 5
    LOCKOUT_SECONDS = 15 * 60  # doubles with every further lockout, up to LOCKOUT_MAX_SECONDS
    LOCKOUT_MAX_SECONDS = 24 * 3600
    LOGIN_IP_LIMIT = "30 per minute"
    CAPTCHA_IP_LIMIT = "60 per minute"
    USERNAME_CHECK_LIMIT = "30 per minute"
    RECOVERY_IP_LIMIT = "10 per minute;100 per day"  # first steps of 忘记用户名 / 忘记密码 per client IP
    RATELIMIT_ENABLED = True

    # -- limits and budgets ---------------------------------------------------------------------
    # Each is taken atomically in Redis before the work it guards (idp/services/limits.py).
    LOCKOUT_FAILURE_WINDOW = 24 * 3600  # consecutive login failures are forgotten this long after the latest
    LOCKOUT_ESCALATION_WINDOW = 24 * 3600  # a lockout doubles the next one until this long after it ended
    RECOVERY_FAILURE_LIMIT = 10  # failed recovery checks per name or document typed (known or not)...
    RECOVERY_FAILURE_WINDOW = 24 * 3600  # ...per this many seconds from the first failure
    SMS_CODE_LENGTH = 6
    SMS_CODE_TTL = 5 * 60  # seconds a code is valid
    SMS_RESEND_AFTER = 60  # seconds before another code may be sent to the same phone for the same purpose
    SMS_MAX_TRIES = 5  # typed codes checked per code sent
    SMS_DAILY_CAP = 10  # codes per phone per calendar day (China time), whatever the purpose
    PROFILE_BANK_CHECK_LIMIT = "10 per day"  # 变更用户信息 bank checks per account
    PROFILE_REGISTRY_CHECK_LIMIT = "5 per day"  # 变更单位名称 registry checks per unit account
    BANK_MAX_CONCURRENT = 2  # bank calls at once per worker process (keep below its thread count)
    BANK_MAX_CONCURRENT_PER_CITIZEN = 1  # bank calls at once for one document, across all nodes
    BANK_SLOT_LEASE = 30  # seconds a citizen's bank slot is held at most (a crashed worker frees it)

    # -- flows (registration, recovery, 变更用户信息) ------------------------------------------------
    # lifetimes in seconds: without a request, and absolute
    REGISTRATION_FLOW_IDLE_TIMEOUT = 30 * 60
    REGISTRATION_FLOW_LIFETIME = 2 * 3600
    RECOVERY_FLOW_IDLE_TIMEOUT = 15 * 60  # 忘记用户名, 忘记密码, 手机号已停用?
    RECOVERY_FLOW_LIFETIME = 3600
    PROFILE_FLOW_IDLE_TIMEOUT = 15 * 60  # 变更用户信息 waiting for the new phone's SMS code
    PROFILE_FLOW_LIFETIME = 3600
    # budgets of one flow, taken before the work (keyed by the flow id, so the window only has to
    # outlast the longest flow lifetime above)
    FLOW_SMS_LIMIT = "5 per 2 hours"  # 发送短信验证 presses that sent a code
    FLOW_REGISTRY_CHECK_LIMIT = "5 per 2 hours"  # enterprise registry checks (单位用户注册's 填写单位信息)
    FLOW_BANK_CHECK_LIMIT = "5 per 2 hours"  # bank four-element checks (registration, 手机号已停用?)
    FLOW_FAILURE_LIMIT = "5 per 2 hours"  # recovery proofs evaluated (密保 answers, 证件号码+手机号, bank); the last failure ends the flow
    # registration step 2 answers 证件已被使用: document checks per solved captcha of step 1 (a new
    # captcha buys the next ones) and per client IP
    DOCUMENT_CHECKS_PER_CAPTCHA = "5 per 2 hours"
    DOCUMENT_CHECK_IP_LIMIT = "30 per hour"

    # -- the citizen's rights (PIPL) ---------------------------------------------------------------
    PRIVACY_NOTICE_VERSION = "2026-12-01"  # the privacy notice in force; consents record it
    PRIVACY_REAUTH_MAX_AGE = 10 * 60  # seconds: a login this recent downloads 我的数据 without the password again
    PRIVACY_DISCLOSURE_LIMIT = 200  # records of systems receiving data listed on the page (the download has all)

    # -- captcha -------------------------------------------------------------------------------
    CAPTCHA_LENGTH = 4
    # characters a captcha is made of: none that looks like another in the image (0/O/D/Q, 1/I/L,
    # 2/Z, 5/S, 8/B, 6/G, U/V, 7/T…) nor sounds like another in the audio captcha, which reads
    # them by their English names (B/C/D/E/G/P/T/V/Z, A/J/K, M/N, F/S/X, six/X); digits and
    # upper-case letters only (the voices the audio captcha ships)
    CAPTCHA_ALPHABET = "34679EHKMRWY"
    CAPTCHA_TTL = 300
    CAPTCHA_FIXED = ""  # pins every captcha answer (tests, demo); production refuses it

    # -- passwords: policy lengths, and hashing (OWASP argon2id: m=19 MiB, t=2, p=1) --------------
    PASSWORD_MIN_LENGTH = 8
    PASSWORD_MAX_LENGTH = 32
    ARGON2_MEMORY_KIB = 19 * 1024
    ARGON2_TIME_COST = 2
    ARGON2_PARALLELISM = 1

    # -- second factors (TOTP, WebAuthn passkeys, recovery codes) --------------------------------
    MFA_CHALLENGE_TTL = 300  # seconds from the password to the second factor; a ceremony's lifetime
    MFA_STEP_UP_WINDOW = 300  # a dangerous console action needs a second factor this recent (seconds)
    MFA_ENROLMENT_LINK_LIFETIME = 24 * 3600  # the staff enrolment link `idp admin create` prints
    MFA_ATTEMPT_LIMIT = "5 per 15 minutes"  # wrong second-factor answers per account
    MFA_TOTP_DRIFT_STEPS = 1  # 30-second steps accepted either side of the server's clock
    MFA_RECOVERY_CODES = 10  # recovery codes per set (each single use)
    MFA_TOTP_ISSUER = "人社统一用户平台"  # the name authenticator apps show beside the account

    # -- external services -----------------------------------------------------------------------
    BANK_URL = ""  # empty: the sandbox, mounted in-process
    BANK_SECRET = "sandbox-shared-secret"
    BANK_TIMEOUT = 5.0
    REGISTRY_URL = ""  # enterprise credit registry (单位用户); empty: the sandbox, mounted in-process
    REGISTRY_SECRET = "sandbox-registry-secret"
    REGISTRY_TIMEOUT = 5.0
    SMS_BACKEND = "outbox"  # outbox (development) or http
    SMS_URL = ""
    SMS_KEY = ""
    SMS_IP_LIMIT = "10 per hour;30 per day"  # SMS sends per client IP (registration)
    SMS_TIMEOUT = 5.0
    DEV_TOOLS = False  # /dev/sms-outbox and friends

    # -- the service desk citizens are sent to (a relying system may add its own: its contacts) --
    SERVICE_DESK_PHONE = "12333"  # 人社服务热线
    SERVICE_DESK_EMAIL = ""

    # -- web -------------------------------------------------------------------------------------
    SECURE_COOKIES = False
    TRUSTED_PROXIES = 0
    LOG_LEVEL = "INFO"
    LOG_FORMAT = "text"  # text or json (one JSON object per line, for log shippers)
    METRICS_TOKEN = ""  # when set, /metrics asks for it as a bearer token (production: required)

    def __init__(self, **overrides: Any) -> None:
        for name in dir(self):
            if not name.isupper():
                continue
            default = getattr(self, name)
            env = os.environ.get(f"IDP_{name}")
            if env is not None:
                setattr(self, name, _coerce(env, default, name))
        for name, value in overrides.items():
            setattr(self, name, value)

    def as_flask_config(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in dir(self) if name.isupper()}
        values.update(
            SQLALCHEMY_DATABASE_URI=self.DATABASE_URL,
            SQLALCHEMY_ENGINE_OPTIONS=_engine_options(self),
            SESSION_COOKIE_SECURE=self.SECURE_COOKIES,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_NAME="idp_session",
            PERMANENT_SESSION_LIFETIME=self.SESSION_IDLE_TIMEOUT,
            WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
            RATELIMIT_STORAGE_URI=self.REDIS_URL or "memory://",
            # X-RateLimit-* headers would cost two more Redis round trips (the window's count and
            # expiry) on every limited request; a refused one still says Retry-After (errors.py)
            RATELIMIT_HEADERS_ENABLED=False,
            JSON_SORT_KEYS=False,
        )
        return values

    def validate(self) -> None:
        """Development settings accept anything; production overrides this."""


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    DEV_TOOLS = True
    # the in-process Redis stand-in is seen by this process only: it drains its own buffer
    AUDIT_DRAIN_IN_PROCESS = True


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True
    DATABASE_URL = "sqlite://"
    ISSUER = "http://localhost"
    SECRET_KEY = "testing-secret-key-not-for-production"
    CAPTCHA_FIXED = "TEST"
    DEV_TOOLS = True
    RATELIMIT_ENABLED = True
    # cheaper hashing keeps the suite fast; production parameters are asserted separately
    ARGON2_MEMORY_KIB = 1024
    ARGON2_TIME_COST = 1


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    LOG_FORMAT = "json"
    DATABASE_URL = ""
    ISSUER = ""
    SECURE_COOKIES = True
    TRUSTED_PROXIES = 1

    def validate(self) -> None:
        problems = []
        if not self.DATABASE_URL or self.DATABASE_URL.startswith("sqlite"):
            problems.append("IDP_DATABASE_URL must name a real database (postgresql+psycopg://…)")
        if not self.REDIS_URL:
            problems.append("IDP_REDIS_URL must name a Redis server (redis://…)")
        if not self.ISSUER.startswith("https://"):
            problems.append("IDP_ISSUER must be an https:// URL")
        if len(self.SECRET_KEY) < 32:
            problems.append("IDP_SECRET_KEY must be set to at least 32 random characters")
        if self.CAPTCHA_FIXED:
            problems.append("IDP_CAPTCHA_FIXED is for tests and the demo only; unset it")
        if self.ACCESS_TOKEN_ALG not in ("RS256", "ES256"):
            problems.append("IDP_ACCESS_TOKEN_ALG must be RS256 or ES256")
        alphabet = set(self.CAPTCHA_ALPHABET)
        if len(alphabet) < 10 or not alphabet <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
            problems.append("IDP_CAPTCHA_ALPHABET needs at least 10 different digits or upper-case letters "
                            "(the audio captcha has voices for those only)")
        if self.AUDIT_DRAIN_ACK_DELAY:
            problems.append("IDP_AUDIT_DRAIN_ACK_DELAY is a test hook (it holds every batch of audit events); unset it")
        if self.DEV_TOOLS:
            problems.append("IDP_DEV_TOOLS exposes the SMS outbox; unset it")
        if self.SMS_BACKEND == "outbox":
            problems.append("IDP_SMS_BACKEND=outbox only logs messages; use http with IDP_SMS_URL")
        if not self.BANK_URL:
            problems.append("IDP_BANK_URL must name the bank verification platform")
        if not self.BANK_SECRET or self.BANK_SECRET == BaseConfig.BANK_SECRET:
            problems.append("IDP_BANK_SECRET is the sandbox's published secret; set the one agreed with the bank platform")
        if not self.REGISTRY_URL:
            problems.append("IDP_REGISTRY_URL must name the enterprise credit registry (单位用户 registration)")
        if not self.REGISTRY_SECRET or self.REGISTRY_SECRET == BaseConfig.REGISTRY_SECRET:
            problems.append("IDP_REGISTRY_SECRET is the sandbox's published secret; set the one agreed with the registry")
        if not self.PII_KEY:
            problems.append("IDP_PII_KEY must hold the personal-data key (32 bytes, hex or base64) from the "
                            "key store; production never generates one on disk, where it would be lost with the node")
        if problems:
            raise ConfigError("production settings refused:\n  - " + "\n  - ".join(problems))


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None, **overrides: Any) -> BaseConfig:
    name = name or os.environ.get("IDP_ENV", "development")
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise ConfigError(f"IDP_ENV={name!r}: choose one of {', '.join(CONFIGS)}") from None
    config = cls(**overrides)
    config.validate()
    return config


def _coerce(raw: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"IDP_{name} must be true or false, not {raw!r}")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"IDP_{name} must be a number, not {raw!r}") from None
    return raw


def _engine_options(config: BaseConfig) -> dict[str, Any]:
    url = config.DATABASE_URL
    if url.startswith("sqlite"):
        # one in-memory database shared by every connection of the process (tests)
        if url in ("sqlite://", "sqlite:///:memory:"):
            from sqlalchemy.pool import StaticPool

            return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        return {"connect_args": {"check_same_thread": False, "timeout": 15}}
    options: dict[str, Any] = {
        # no pre-ping on every checkout: idp/db_pool.py pings only connections that sat idle
        "pool_pre_ping": False, "pool_size": 10, "max_overflow": 10,
        "pool_timeout": float(config.DATABASE_POOL_TIMEOUT),
    }
    if url.startswith("postgresql"):
        from .db_pool import postgres_connect_args

        options["connect_args"] = postgres_connect_args(config)
    return options

