// oidc-provider configured as close to Valet's defaults as it goes, for
// bench/peer_comparison.sh:
// - client_credentials with RFC 9068 JWT access tokens signed ES256 (resource
//   indicators with accessTokenFormat 'jwt'), 600 s, audience https://api.example.test;
// - authorization code + PKCE (S256) with refresh tokens, ES256 ID tokens;
// - introspection for confidential clients;
// - devInteractions (its built-in login and consent pages: any login, no password
//   check, so no password hashing) and the default in-memory adapter.
//
//   PORT=18300 WORKERS=1 node server.mjs
//
// WORKERS > 1 forks that many processes behind node:cluster on one port. A fresh ES256
// key is generated at start (by the primary, shared with the workers).
import cluster from 'node:cluster';
import * as crypto from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 18300);
const workers = Number(process.env.WORKERS || 1);
const issuer = `http://127.0.0.1:${port}`;
const API = 'https://api.example.test';

if (cluster.isPrimary && workers > 1) {
  const jwk = newKey();
  for (let i = 0; i < workers; i += 1) cluster.fork({ OP_JWK: JSON.stringify(jwk) });
  cluster.on('exit', (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  start(process.env.OP_JWK ? JSON.parse(process.env.OP_JWK) : newKey());
}

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomBytes(8).toString('hex'), alg: 'ES256', use: 'sig' };
}

function start(jwk) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'bench-service',
        client_secret: 'bench-service-secret-0123456789abcdef',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'read',
      },
      {
        client_id: 'bench-web',
        client_secret: 'bench-web-secret-0123456789abcdef',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['https://app.example.test/callback'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid offline_access read',
      },
    ],
    jwks: { keys: [jwk] },
    // The only key is ES256: it is the default for every client (ID tokens too).
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'read'],
    // Valet issues a refresh token whenever the client may refresh (with
    // offline_access for OpenID requests), also on a silent re-authorization.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: 600,
      ClientCredentials: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 600,
      Session: 12 * 3600,
      Grant: 30 * 24 * 3600,
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: 'read',
          audience: API,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.listen(port, '127.0.0.1', () => {
    console.log(`oidc-provider ${process.pid} listening on ${issuer}`);
  });
}
