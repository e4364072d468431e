#
# Transcription of Altair's documented `getToken.py` example ("JWT Access Tokens",
# Altair Accelerator REST API v3 docs; see /work/shared/reference/accelerator-rest-v3.md
# sections 2.1-2.2), kept for comparison with ncinfo_async. getJWT() POSTs the form
# fields `username` and `password` to url + "/api/v3/token" and returns
# token_type + ":" + access_token, the documented Authorization header value.
# ruff: noqa
# fmt: off
#
import json, sys

def getJWT(session, url, user, password):
    tokenUrl = url + "/api/v3/token"
    r = session.post(tokenUrl, data={'username': user, 'password': password}, verify=True)
    if r.status_code > 300:
        print(r.json())
        print(r.json()['error'])
        sys.exit(1)
    token = r.json()
    jwtToken = token['token_type'] + ":" + token['access_token']
    return jwtToken
