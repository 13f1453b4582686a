#!/usr/bin/env python3
"""Verifies a message's DKIM signatures with dkimpy (PyPI), an implementation nobody here
wrote. The DNS answer comes from the command line: the TXT record tsubame told the tenant
to publish. Usage: dkim_verify.py MESSAGE_FILE NAME TXT_VALUE; prints {"valid": bool, ...}."""
import json
import sys

import dkim

path, name, value = sys.argv[1:4]
with open(path, "rb") as f:
    message = f.read()
# The sink's capture puts its own envelope headers first; they are not part of the message.
lines = message.split(b"\r\n")
while lines and (lines[0].startswith(b"Return-Path:") or lines[0].startswith(b"X-Sink-Recipient:")):
    lines.pop(0)
message = b"\r\n".join(lines)


def dnsfunc(qname, timeout=5):
    asked = qname.decode() if isinstance(qname, bytes) else qname
    return value.encode() if asked.rstrip(".") == name.rstrip(".") else b""


valid = dkim.verify(message, dnsfunc=dnsfunc)
print(json.dumps({"valid": bool(valid), "signatures": message.count(b"DKIM-Signature:")}))
