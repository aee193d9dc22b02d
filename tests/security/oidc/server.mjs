// A real OAuth 2.0 authorization server (oidc-provider) for setpeer's security tests.
//
// Usage: node server.mjs CONFIG.json
//   CONFIG = {
//     "certfile": "as.crt", "keyfile": "as.key",      // HTTPS (trustme, from the test)
//     "clients": [{"client_id": "a", "jwks": {...}}],  // private_key_jwt clients
//     "scope": "pushpull"                              // optional: scope tokens may carry
//   }
//   SETPEER_TEST_AT_TTL: access token lifetime in seconds (default 300).
//
// Listens on 127.0.0.1:0 and prints one JSON line {"port", "issuer"} once ready.
// Grants: client_credentials only. Access tokens are RFC 9068 JWTs (typ at+jwt)
// whose audience is the RFC 8707 resource indicator the client asked for.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ttl = Number(process.env.SETPEER_TEST_AT_TTL || '300');
const scope = config.scope || '';

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'as-es256', alg: 'ES256', use: 'sig' };
}

const server = https.createServer({
  cert: fs.readFileSync(config.certfile),
  key: fs.readFileSync(config.keyfile),
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      client_id: client.client_id,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: client.jwks,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: scope || undefined,
    })),
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    jwks: { keys: [signingKey()] },
    scopes: scope ? scope.split(' ') : [],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Any https resource: the test decides which audience a token is for
        // (including wrong ones, to see them refused).
        getResourceServerInfo: (ctx, resourceIndicator) => {
          if (!resourceIndicator.startsWith('https://')) {
            throw new Error('resource must be https');
          }
          return {
            scope,
            audience: resourceIndicator,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ port, issuer })}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
