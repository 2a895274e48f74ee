// A real, strict OAuth 2.0 / OpenID Connect authorization server for the `real_as` tests:
// panva's certified `oidc-provider`, configured here and nowhere else.
//
//   node tests/real/server.js [--watch-stdin] PORT...
//
// It listens on 127.0.0.1 on an ephemeral port and registers, for each client, exactly the
// redirect URIs `http://127.0.0.1:PORT/callback` for the PORTs given (no loopback port
// wildcard: the clients are `web` clients, matched exactly). Strict on purpose:
//   - PKCE required for every client, S256 only (oidc-provider 9 knows no `plain`);
//   - three clients, each held to its one registered token endpoint auth method:
//     `public-app` (none), `basic-app` (client_secret_basic), `post-app` (client_secret_post);
//   - refresh tokens only with `offline_access` (which oidc-provider keeps only with
//     `prompt=consent`), rotated on every use; reusing a spent one revokes the whole grant;
//   - access tokens live ACCESS_TOKEN_TTL seconds (less than oauth-pkce's 300 s buffer).
// Sign-in and consent are oidc-provider's own development interactions: a login form (any
// name and password), then a consent page with "Continue" and "[ Cancel ]".
//
// stdout, one JSON object per line: first {"ready":true,"issuer":…,"clients":{…}} once it
// listens (client secrets are random per run), then one {"event":…} line per token endpoint
// outcome, for the tests to count. With --watch-stdin it exits when stdin closes, so it
// never outlives the test that started it. A human running it gets a provider file on stderr.

import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import { Provider } from 'oidc-provider';

const ACCESS_TOKEN_TTL = 120;
const REFRESH_TOKEN_TTL = 24 * 60 * 60;

const args = process.argv.slice(2);
const watchStdin = args.includes('--watch-stdin');
const ports = args.filter((a) => a !== '--watch-stdin');
if (ports.length === 0 || !ports.every((p) => /^[0-9]{1,5}$/.test(p) && Number(p) > 0 && Number(p) < 65536)) {
  process.stderr.write('usage: node tests/real/server.js [--watch-stdin] CALLBACK_PORT...\n');
  process.exit(2);
}

const redirectUris = ports.map((p) => `http://127.0.0.1:${p}/callback`);
const secret = () => randomBytes(24).toString('base64url');
const clients = {
  none: { client_id: 'public-app', client_secret: null },
  client_secret_basic: { client_id: 'basic-app', client_secret: secret() },
  client_secret_post: { client_id: 'post-app', client_secret: secret() },
};

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'test-es256' };

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: Object.entries(clients).map(([method, c]) => ({
      client_id: c.client_id,
      ...(c.client_secret ? { client_secret: c.client_secret } : {}),
      token_endpoint_auth_method: method,
      application_type: 'web',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: [secret()] },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile'],
    claims: { openid: ['sub'], profile: ['name'] },
    async findAccount(_ctx, sub) {
      return { accountId: sub, async claims() { return { sub, name: `Test user ${sub}` }; } };
    },
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      IdToken: ACCESS_TOKEN_TTL,
      Interaction: 600,
      Session: 3600,
      Grant: REFRESH_TOKEN_TTL,
      RefreshToken: REFRESH_TOKEN_TTL,
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
  });

  const event = (name) => (ctx, err) => emit({
    event: name,
    grant_type: ctx.oidc?.params?.grant_type ?? null,
    client_id: ctx.oidc?.client?.clientId ?? null,
    auth_method: ctx.oidc?.client?.clientAuthMethod ?? null,
    // How the client presented its secret, as this request carried it: oidc-provider itself
    // takes client_secret_basic and client_secret_post as one class, so the tests check this.
    secret_in_header: Boolean(ctx.get('authorization')),
    secret_in_body: Boolean(ctx.oidc?.params?.client_secret),
    error: err?.error ?? null,
    error_description: err?.error_description ?? null,
  });
  provider.on('grant.success', event('grant.success'));
  provider.on('grant.error', event('grant.error'));
  provider.on('authorization.error', event('authorization.error'));
  provider.on('server_error', event('server_error'));

  server.on('request', provider.callback());

  emit({
    ready: true,
    issuer,
    access_token_ttl: ACCESS_TOKEN_TTL,
    redirect_uris: redirectUris,
    clients,
  });
  if (process.stderr.isTTY) printProviderFile(issuer);
});

if (watchStdin) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));

function printProviderFile(issuer) {
  const c = clients.client_secret_basic;
  process.stderr.write(`
oidc-provider is listening at ${issuer} (discovery: ${issuer}/.well-known/openid-configuration)
Sign-in accepts any name and password. A provider file for it (save as local-as.toml):

name = "local-as"
display_name = "Local oidc-provider"
authorization_url = "${issuer}/auth"
token_url = "${issuer}/token"
revocation_url = "${issuer}/token/revocation"
scopes = ["openid", "offline_access", "profile"]
client_auth = "client_secret_basic"
secret_prefix = "LOCAL_AS"
redirect_host = "127.0.0.1"
ports = "${ports[0]}"
[authorization_params]
prompt = "consent"
[check]
url = "${issuer}/me"

and its client (client_secret_post: post-app / ${clients.client_secret_post.client_secret}; none: public-app):
  export LOCAL_AS_CLIENT_ID=${c.client_id} LOCAL_AS_CLIENT_SECRET=${c.client_secret}
Stop it with Ctrl-C.
`);
}
