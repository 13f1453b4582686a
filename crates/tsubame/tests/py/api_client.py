#!/usr/bin/env python3
"""POSTs a JSON body to tsubame's HTTP API with Python's urllib and prints what came back.

Usage: api_client.py URL TOKEN|- BODY|- [HEADERS_JSON [METHOD]]
(BODY is JSON text, - for none; TOKEN - sends no Authorization; HEADERS_JSON adds request
headers; METHOD defaults to POST)
Prints {"status": int, "body": parsed JSON or text, "retry_after": header or null,
"replayed": the Idempotent-Replayed header or null}.
"""
import json
import sys
import urllib.error
import urllib.request

url, token, body = sys.argv[1], sys.argv[2], sys.argv[3]
method = sys.argv[5] if len(sys.argv) > 5 else "POST"
data = None if body == "-" else body.encode()
request = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
if token != "-":
    request.add_header("Authorization", f"Bearer {token}")
for name, value in (json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}).items():
    request.add_header(name, value)
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        status, raw, headers = response.status, response.read(), response.headers
except urllib.error.HTTPError as err:
    status, raw, headers = err.code, err.read(), err.headers
try:
    parsed = json.loads(raw) if raw else None
except ValueError:
    parsed = raw.decode(errors="replace")
print(json.dumps({"status": status, "body": parsed, "retry_after": headers.get("Retry-After"),
                  "replayed": headers.get("Idempotent-Replayed")}))
