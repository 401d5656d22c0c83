// The benchmark's peer: panva's node oidc-provider, configured to do the same work as our provider.
//
//   node oidc-provider-peer.mjs <config.json>
//
// config.json (written by bench/run.py): {"port", "issuer", "argon2": {"memory_kib", "time_cost",
// "parallelism"}, "clients": [oidc-provider client metadata], "users": [{"username", "password",
// "sub", "name"}]}.  Prints "ready" on stdout once listening.
//
// Equal work, item by item:
//  - RS256 (RSA 2048) for ID tokens and for the JWT access tokens of client_credentials (our access
//    tokens are RFC 9068 JWTs, signed RS256); PKCE S256 required; refresh tokens only with
//    offline_access, rotated on every use.
//  - the login form checks the password with argon2id through the npm `argon2` package with the
//    same m/t/p as ours (hashes made here at start-up with those parameters), and an unknown
//    username costs a dummy verify, as ours does.
//  - the bench client is first-party: login implies consent (our `--first-party`), so the login
//    POST records the grant; node keeps offline_access only with prompt=consent, which the bench adds.
// Different by design: state lives in this process's memory (an unbounded Map with expiry, like
// the library's development adapter without its 1,000-entry LRU cap, which would evict the
// bench's grants), where ours writes every code and token to PostgreSQL and sessions to Redis.
// That makes the peer's figures an upper bound for node.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parse as parseQuery } from 'node:querystring';

import argon2 from 'argon2';
import Provider from 'oidc-provider';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { issuer, port } = settings;
const argonOptions = {
  type: argon2.argon2id,
  memoryCost: settings.argon2.memory_kib,
  timeCost: settings.argon2.time_cost,
  parallelism: settings.argon2.parallelism,
};

// -- accounts --------------------------------------------------------------------------------------
const bySub = new Map();
const byUsername = new Map();
for (const user of settings.users) {
  const account = { ...user, hash: await argon2.hash(user.password, argonOptions), updatedAt: Math.floor(Date.now() / 1000) };
  delete account.password;
  bySub.set(account.sub, account);
  byUsername.set(account.username.toLowerCase(), account);
}
const dummyHash = await argon2.hash('not-a-password-of-anyone', argonOptions);

async function findAccount(_ctx, sub) {
  const account = bySub.get(sub);
  if (!account) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { sub, name: account.name, preferred_username: account.username, updated_at: account.updatedAt };
    },
  };
}

// -- storage: the development adapter's behaviour without its size cap -------------------------------
const store = new Map();
const grantMembers = new Map();
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken']);

class MapAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const members = grantMembers.get(payload.grantId) ?? new Set();
      members.add(key);
      grantMembers.set(payload.grantId, members);
    }
    if (this.model === 'Session') store.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt: Infinity });
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) { store.delete(this.key(id)); return undefined; }
    return entry.payload;
  }

  async findByUid(uid) {
    const id = store.get(`sessionUid:${uid}`)?.payload;
    return id ? this.find(id) : undefined;
  }

  async findByUserCode() { return undefined; }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) store.delete(key);
    grantMembers.delete(grantId);
  }
}

// expired entries go every minute, as a TTL store would drop them
setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) if (entry.expiresAt <= now) store.delete(key);
}, 60_000).unref();

// -- the provider ------------------------------------------------------------------------------------
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: settings.clients,
  findAccount,
  jwks: { keys: [{ ...signingKey, kid: 'peer-rs256', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'profile', 'offline_access'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'updated_at'] },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials tokens are for the provider's own API, as JWTs (RFC 9068) like ours;
      // tokens from the code flow stay bound to userinfo (node's rule), opaque.
      defaultResource: (ctx, _client, oneOf) => oneOf
        ?? (ctx.oidc.params?.grant_type === 'client_credentials' ? issuer : undefined),
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: issuer,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
      useGrantedResource: () => false,
    },
  },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 600,
    RefreshToken: 30 * 24 * 3600,
    Grant: 30 * 24 * 3600,
    Interaction: 3600,
    Session: 12 * 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

// -- the login form (the interaction) -------------------------------------------------------------------
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(res, uid, status = 200, error = '') {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>登录</title></head><body>
<form method="post" action="/interaction/${escape(uid)}/login">${error ? `<p role="alert">${escape(error)}</p>` : ''}
<label for="username">用户名</label><input id="username" name="username" autocomplete="username">
<label for="password">密码</label><input id="password" name="password" type="password">
<button type="submit">登录</button></form></body></html>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return parseQuery(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') return loginPage(res, details.uid);
  const form = await readForm(req);
  const account = byUsername.get(String(form.username ?? '').trim().toLowerCase());
  const ok = await argon2.verify(account ? account.hash : dummyHash, String(form.password ?? ''));
  if (!account || !ok) return loginPage(res, details.uid, 400, '用户名或密码错误');
  // first-party client: logging in grants the requested scopes (no separate consent page)
  const grant = new provider.Grant({ accountId: account.sub, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  return provider.interactionFinished(
    req, res, { login: { accountId: account.sub, amr: ['pwd'] }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const oidc = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = err.statusCode ?? 500;
      res.end(String(err.message ?? err));
    });
    return;
  }
  oidc(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => console.log('ready'));
