#!/usr/bin/env python3
"""Opens, as a person would, the tracking pixel of captured messages: reads each .eml in
DIR with Python's email parser, and for the first COUNT whose subject is SUBJECT fetches
its <img> with http.client (Host: the pixel's host). Prints {"opened": [recipient, ...]}.

Usage: open_pixels.py DIR HOST:PORT SUBJECT COUNT USER_AGENT
"""
import email
import email.policy
import http.client
import json
import os
import sys
from html.parser import HTMLParser
from urllib.parse import urlsplit

directory, addr, subject, count, agent = sys.argv[1:6]
count = int(count)


class Pixels(HTMLParser):
    def __init__(self):
        super().__init__()
        self.pixels = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and "src" in attrs:
            self.pixels.append(attrs["src"])


opened = []
for name in sorted(os.listdir(directory)):
    if len(opened) >= count:
        break
    if not name.endswith(".eml"):
        continue
    with open(os.path.join(directory, name), "rb") as f:
        message = email.message_from_binary_file(f, policy=email.policy.default)
    if message["Subject"] != subject:
        continue
    html = message.get_body(preferencelist=("html",))
    parser = Pixels()
    parser.feed(html.get_content() if html else "")
    if not parser.pixels:
        continue
    url = urlsplit(parser.pixels[0])
    conn = http.client.HTTPConnection(addr, timeout=10)
    conn.request("GET", url.path, headers={"Host": url.netloc, "User-Agent": agent})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"pixel answered {response.status}")
    opened.append(str(message["To"]))
print(json.dumps({"opened": opened}))
