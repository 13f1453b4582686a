#!/usr/bin/env python3
"""POSTs a JSON body to tsubame's HTTP API with Python's urllib and prints what came back.

Usage: api_client.py URL TOKEN|- BODY   (BODY is JSON text; TOKEN - sends no Authorization)
Prints {"status": int, "body": parsed JSON or text, "retry_after": header or null}.
"""
import json
import sys
import urllib.error
import urllib.request

url, token, body = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
if token != "-":
    request.add_header("Authorization", f"Bearer {token}")
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        status, raw, retry = response.status, response.read(), response.headers.get("Retry-After")
except urllib.error.HTTPError as err:
    status, raw, retry = err.code, err.read(), err.headers.get("Retry-After")
try:
    parsed = json.loads(raw) if raw else None
except ValueError:
    parsed = raw.decode(errors="replace")
print(json.dumps({"status": status, "body": parsed, "retry_after": retry}))
