// The OpenID provider the gateway's sign-on tests run against: panva's oidc-provider
// (OpenID certified), on 127.0.0.1, configured from a JSON file.  Started and stopped by
// tests/support/oidc.py.  Usage: node provider.mjs CONFIG.json
//
// CONFIG: { "modules": dir holding node_modules/oidc-provider, "admin_token": "...",
//           "clients": [client metadata...], "users": {"<sub>": {"password", "preferred_username",
//           "email", "groups", ...}} }
//
// It listens on a free port first and only then builds the provider, so the issuer carries
// the real port; the first stdout line is "listening <port>".  Besides the protocol it has
// its own login form (a small custom interaction that checks passwords, unlike
// devInteractions) and test-only admin routes under /_test/, guarded by the admin token:
//   POST /_test/rotate-keys {"keep_old": bool}  a new signing key (the old one kept for verification, or gone)
//   POST /_test/ttl {"IdToken": s, "AccessToken": s, "RefreshToken": s, "Session": s}
//   POST /_test/clients {client metadata}        add or replace a client (e.g. a new redirect_uri)
//   GET  /_test/keys                             the current public keys (kids)
//   POST /_test/sign {"claims": {...}, "header": {...}}  a JWT signed RS256 with the current key
//        (for tests of ID tokens with a valid signature but a wrong iss, aud, exp, azp...)

import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { default: Provider } = await import(
  pathToFileURL(join(config.modules, 'node_modules', 'oidc-provider', 'lib', 'index.js')).href
);

const users = config.users;
const clients = new Map(config.clients.map((c) => [c.client_id, c]));
const ttl = { AccessToken: 600, IdToken: 600, RefreshToken: 86400, Session: 86400, Grant: 86400, Interaction: 600, ...(config.ttl || {}) };
const cookieKeys = [randomBytes(32).toString('base64url')];

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}
let keys = [newKey()];

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sign-in</title></head><body>
<h1>Test provider sign-in</h1>${error ? `<p id="error">${escape(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<input id="username" name="username" type="text" required autofocus>
<input id="password" name="password" type="password" required>
<button id="submit" type="submit">Sign in</button></form></body></html>`;
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: [...clients.values()],
    jwks: { keys },
    cookies: { keys: cookieKeys },
    // Claims go into the ID token itself (the gateway reads groups from it, not /userinfo).
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    async findAccount(_ctx, sub) {
      const user = users[sub];
      if (!user) return undefined;
      const { password: _password, ...claims } = user;
      return { accountId: sub, async claims() { return { sub, ...claims }; } };
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    // Like Keycloak: a refresh token for every client allowed the grant, without offline_access.
    async issueRefreshToken(_ctx, client) { return client.grantTypeAllowed('refresh_token'); },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // A first-party client: consent is implied, so the only interaction is the login form.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const found = await ctx.oidc.provider.Grant.find(grantId);
        if (found) return found;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid offline_access profile email groups');
      await grant.save();
      return grant;
    },
    ttl: {
      AccessToken: () => ttl.AccessToken,
      IdToken: () => ttl.IdToken,
      RefreshToken: () => ttl.RefreshToken,
      Session: () => ttl.Session,
      Grant: () => ttl.Grant,
      Interaction: () => ttl.Interaction,
      AuthorizationCode: () => 60,
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  return provider;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

let provider;
let callback;

async function admin(req, res, path) {
  if (req.headers['x-test-admin'] !== config.admin_token) return send(res, 403, 'text/plain', 'forbidden');
  if (req.method === 'GET' && path === '/_test/keys') {
    return send(res, 200, 'application/json', JSON.stringify({ kids: keys.map((k) => k.kid) }));
  }
  if (req.method !== 'POST') return send(res, 405, 'text/plain', 'POST only');
  const body = await readJson(req);
  if (path === '/_test/sign') {
    const key = keys[0];
    const header = { alg: 'RS256', typ: 'JWT', kid: key.kid, ...(body.header || {}) };
    const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
    const input = `${b64(header)}.${b64(body.claims)}`;
    const signature = sign('sha256', Buffer.from(input), createPrivateKey({ key, format: 'jwk' }));
    return send(res, 200, 'application/json', JSON.stringify({ token: `${input}.${signature.toString('base64url')}` }));
  }
  if (path === '/_test/rotate-keys') {
    keys = body.keep_old ? [newKey(), ...keys] : [newKey()];
  } else if (path === '/_test/ttl') {
    Object.assign(ttl, body);
    return send(res, 200, 'application/json', JSON.stringify(ttl));
  } else if (path === '/_test/clients') {
    clients.set(body.client_id, body);
  } else {
    return send(res, 404, 'text/plain', 'unknown admin route');
  }
  // Keys and static clients are fixed at construction: a new provider instance takes
  // over.  Sessions, grants and codes live in the in-memory adapter, module-wide, so they
  // survive the swap.
  provider = buildProvider(provider.issuer);
  callback = provider.callback();
  return send(res, 200, 'application/json', JSON.stringify({ kids: keys.map((k) => k.kid) }));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
  if (details.prompt.name !== 'login') return send(res, 501, 'text/plain', `prompt ${details.prompt.name} not handled`);
  if (req.method === 'GET' && !action) return send(res, 200, 'text/html; charset=utf-8', loginPage(uid));
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const sub = form.get('username') || '';
    const user = Object.hasOwn(users, sub) ? users[sub] : undefined;
    if (!user || user.password !== form.get('password')) {
      return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, 'Invalid username or password'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: sub } }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'text/plain', 'method not allowed');
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname.startsWith('/_test/')) return await admin(req, res, url.pathname);
    const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/);
    if (m) return await interaction(req, res, m[1], m[2]);
    return callback(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) send(res, 500, 'text/plain', String(err && err.message));
    else res.end();
  }
});

// Exit with the parent (tests/support/oidc.py closes our stdin when it stops us, or dies).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  provider = buildProvider(`http://127.0.0.1:${port}`);
  callback = provider.callback();
  process.stdout.write(`listening ${port}\n`);
});
