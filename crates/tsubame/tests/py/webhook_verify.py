#!/usr/bin/env python3
"""Checks what a webhook receiver recorded, the way a tenant's receiver would, with
Python's hmac and hashlib (not our code): each delivery's X-Tsubame-Signature must be
HMAC-SHA256 of "<X-Tsubame-Timestamp>.<body>" with the endpoint's secret (after a secret
rotation the header carries several comma-separated signatures: any may match).
Usage: webhook_verify.py SECRET RECORD_FILE
Prints {"deliveries": n, "accepted": n (answered 200), "bad_signatures": n,
"events": [events of accepted deliveries, in arrival order]}."""
import base64
import hashlib
import hmac
import json
import sys

secret, path = sys.argv[1:3]
deliveries = accepted = bad = 0
events = []
with open(path) as f:
    for line in f:
        record = json.loads(line)
        deliveries += 1
        body = base64.b64decode(record["body"])
        headers = record["headers"]
        timestamp = headers.get("x-tsubame-timestamp", "")
        expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                                    hashlib.sha256).hexdigest()
        presented = headers.get("x-tsubame-signature", "").split(",")
        if not any(hmac.compare_digest(expected, one.strip()) for one in presented):
            bad += 1
            continue
        if not record["down"]:
            accepted += 1
            events.extend(json.loads(body)["events"])
print(json.dumps({"deliveries": deliveries, "accepted": accepted, "bad_signatures": bad,
                  "events": events}))
