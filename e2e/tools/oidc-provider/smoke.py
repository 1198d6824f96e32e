#!/usr/bin/env python3
"""Signs in to the local OpenID Connect provider without a browser (authorization
code with PKCE through its login and consent pages) and prints the ID token.

  python3 smoke.py ISSUER CA_FILE LOGIN [REDIRECT_URI]

A check of the provider and of the apiserver's trust in it:
  curl --cacert CA -H "Authorization: Bearer $(python3 smoke.py ...)" -X POST \
    -H 'Content-Type: application/json' -d '{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1"}' \
    https://127.0.0.1:APISERVER/apis/authentication.k8s.io/v1/selfsubjectreviews
"""
import ssl, urllib.request, urllib.parse, http.cookiejar, hashlib, base64, secrets, re, json, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
iss = sys.argv[1].rstrip('/')
cb = sys.argv[4] if len(sys.argv) > 4 else 'http://127.0.0.1:8081/console/oidc/callback'
jar = http.cookiejar.CookieJar()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
op = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def go(url, data=None):
    try:
        r = op.open(url, data=urllib.parse.urlencode(data).encode() if data else None)
        return r.status, r.headers.get('location'), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get('location'), e.read().decode()
v = secrets.token_urlsafe(48); ch = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b'=').decode()
q = urllib.parse.urlencode(dict(client_id='release-passport-console', redirect_uri=cb, response_type='code', scope='openid email groups', code_challenge=ch, code_challenge_method='S256', state='s1', nonce='n1'))
url = iss + '/auth?' + q
for step in range(10):
    st, loc, body = go(url)
    if st >= 400: sys.exit(f'{url}: {st} {body[:300]}')
    if loc and loc.startswith(cb): break
    if loc: url = urllib.parse.urljoin(url, loc); continue
    m = re.search(r'action="([^"]+)"', body); action = urllib.parse.urljoin(url, m.group(1))
    fields = dict(re.findall(r'name="([^"]+)"\s+value="([^"]*)"', body))
    if 'name="login"' in body: fields.update(login=sys.argv[3], password='unused')
    st, loc, body = go(action, fields)
    url = urllib.parse.urljoin(action, loc)
    if loc and loc.startswith(cb): break
code = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)['code'][0]
st, _, body = go(iss + '/token', dict(grant_type='authorization_code', code=code, redirect_uri=cb, client_id='release-passport-console', code_verifier=v))
if st != 200: sys.exit(f'token endpoint: {st} {body[:300]}')
print(json.loads(body)['id_token'])
