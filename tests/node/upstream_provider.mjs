// A node-oidc-provider (panva/node-oidc-provider) as an upstream OpenID
// provider for Valet's federation test:
//
//     node upstream_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// Issuer http://localhost:PORT; one confidential client; its development
// interactions (any login name signs in as that account, then a consent
// form). Every account's email is LOGIN@node.example.test, verified.
// Prints "ready" once listening.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const provider = new Provider(`http://localhost:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  cookies: { keys: ['federation test cookie key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@node.example.test`, email_verified: true, name: `Node ${id}` };
      },
    };
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));
