#!/usr/bin/env python3
"""POSTs a file as the request body with Python's urllib, as a tenant's script would.

Usage: upload.py URL TOKEN FILE
Prints {"status": int, "body": parsed JSON or text}.
"""
import json
import sys
import urllib.error
import urllib.request

url, token, path = sys.argv[1:4]
with open(path, "rb") as f:
    data = f.read()
request = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "text/csv",
                                          "Authorization": f"Bearer {token}"})
try:
    with urllib.request.urlopen(request, timeout=120) as response:
        status, raw = response.status, response.read()
except urllib.error.HTTPError as err:
    status, raw = err.code, err.read()
try:
    body = json.loads(raw)
except ValueError:
    body = raw.decode("utf-8", "replace")
print(json.dumps({"status": status, "body": body}))
