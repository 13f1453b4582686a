#!/usr/bin/env python3
"""GETs a URL with Python's http.client (redirects are not followed) and prints
{"status", "location", "content_type", "bytes"}.

Usage: track_fetch.py HOST:PORT PATH HOST_HEADER USER_AGENT
"""
import http.client
import json
import sys

addr, path, host, agent = sys.argv[1:5]
conn = http.client.HTTPConnection(addr, timeout=10)
conn.request("GET", path, headers={"Host": host, "User-Agent": agent})
response = conn.getresponse()
body = response.read()
print(json.dumps({"status": response.status, "location": response.getheader("Location"),
                  "content_type": response.getheader("Content-Type"), "bytes": len(body)}))
