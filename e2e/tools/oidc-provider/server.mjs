// The OpenID Connect provider of the console's sign-in tests, on loopback
// over HTTPS (the apiserver's structured authentication configuration only
// trusts https issuers). It is the npm package oidc-provider, configured
// for one public client (authorization code with PKCE, S256), RP-initiated
// logout, and ID tokens that carry the claims the apiserver maps: `email`
// (user name) and `groups`. Sign-in uses the package's own interaction
// pages (a login form that accepts any name): tests choose who signs in.
//
//   node server.mjs --issuer https://127.0.0.1:PORT --port PORT \
//     --cert tls.crt --key tls.key --client-id release-passport-console \
//     --redirect-uri http://127.0.0.1:8081/console/oidc/callback \
//     [--post-logout-redirect-uri URI] [--accounts accounts.json]
//
// accounts.json: {"alice": {"groups": ["payments-approvers"]}, ...}; a name
// not listed signs in with no groups. Prints "ready <issuer>" when serving.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    port: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'client-id': { type: 'string', default: 'release-passport-console' },
    'redirect-uri': { type: 'string', multiple: true },
    'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
    accounts: { type: 'string' },
    'id-token-ttl': { type: 'string', default: '3600' },
  },
});
for (const required of ['issuer', 'port', 'cert', 'key', 'redirect-uri']) {
  if (!args[required]) {
    console.error(`oidc-provider: --${required} is required`);
    process.exit(2);
  }
}
const accounts = args.accounts ? JSON.parse(readFileSync(args.accounts, 'utf8')) : {};
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: randomBytes(8).toString('hex') };

const provider = new Provider(args.issuer, {
  clients: [{
    client_id: args['client-id'],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: args['redirect-uri'],
    post_logout_redirect_uris: args['post-logout-redirect-uri'],
  }],
  pkce: { required: () => true },
  jwks: { keys: [signing] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  scopes: ['openid', 'email', 'groups'],
  // The apiserver reads email and groups from the ID token itself.
  conformIdTokenClaims: false,
  ttl: { IdToken: Number(args['id-token-ttl']) },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
  },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: `${sub}@example.test`,
          email_verified: true,
          groups: accounts[sub]?.groups ?? [],
        };
      },
    };
  },
});

// Errors the provider answers with a 500 are the tests' to read.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

createServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) }, provider.callback())
  .listen(Number(args.port), '127.0.0.1', () => console.log(`ready ${args.issuer}`));
