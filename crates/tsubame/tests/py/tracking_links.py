#!/usr/bin/env python3
"""Reads a captured message with Python's email parser and prints the links of its HTML
part: {"links": [href of each <a>], "pixels": [src of each <img>]}.

Usage: tracking_links.py FILE.eml
"""
import email
import email.policy
import json
import sys
from html.parser import HTMLParser


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.pixels = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "img" and "src" in attrs:
            self.pixels.append(attrs["src"])


with open(sys.argv[1], "rb") as f:
    message = email.message_from_binary_file(f, policy=email.policy.default)
html = message.get_body(preferencelist=("html",))
parser = Links()
parser.feed(html.get_content() if html else "")
print(json.dumps({"links": parser.links, "pixels": parser.pixels}))
