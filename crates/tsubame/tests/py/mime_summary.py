#!/usr/bin/env python3
"""Reads a delivered message with Python's own email parser (not ours) and prints its shape
as JSON: subject, the tree of content types, the text part, and each attachment or inline
part with its file name, Content-ID and decoded content.
Usage: mime_summary.py MESSAGE_FILE"""
import email
import email.policy
import json
import sys

with open(sys.argv[1], "rb") as f:
    message = email.message_from_binary_file(f, policy=email.policy.default)

parts, files = [], []
for part in message.walk():
    parts.append(part.get_content_type())
    disposition = part.get_content_disposition()
    if disposition in ("attachment", "inline"):
        files.append({"type": part.get_content_type(), "disposition": disposition,
                      "filename": part.get_filename(), "content_id": part.get("Content-ID"),
                      "content": part.get_payload(decode=True).decode("latin-1")})
text = message.get_body(preferencelist=("plain",))
html = message.get_body(preferencelist=("html",))
print(json.dumps({"subject": str(message["Subject"]), "parts": parts, "files": files,
                  "text": text.get_content() if text else None,
                  "html": html.get_content() if html else None}))
