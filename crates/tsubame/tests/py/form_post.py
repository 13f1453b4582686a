#!/usr/bin/env python3
"""Posts an HTML form (application/x-www-form-urlencoded) as a browser would, without
following redirects, with Python's urllib.

Usage: form_post.py URL [NAME=VALUE ...]   (no field: a plain POST with an empty form)
Prints {"status": int, "body": text, "location": the Location header or null}.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


url = sys.argv[1]
fields = [tuple(arg.split("=", 1)) if "=" in arg else (arg, "") for arg in sys.argv[2:]]
data = urllib.parse.urlencode(fields).encode()
request = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
opener = urllib.request.build_opener(NoRedirect)
try:
    with opener.open(request, timeout=30) as response:
        status, raw, headers = response.status, response.read(), response.headers
except urllib.error.HTTPError as err:
    status, raw, headers = err.code, err.read(), err.headers
print(json.dumps({"status": status, "body": raw.decode("utf-8", "replace"),
                  "location": headers.get("Location")}))
