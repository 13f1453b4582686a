#!/usr/bin/env python3
"""Receivers for tsubame's alert notifications, each checking the payload against the
published format of the service it stands for, on Python's http.server at 127.0.0.1:

  /slack      Slack incoming webhook: JSON with a `text` fallback and Block Kit `blocks`
              (header: plain_text <= 150; section: text object <= 3000 and/or <= 10 fields
              <= 2000; context: <= 10 text elements); answers 200 "ok".
  /pagerduty  PagerDuty Events API v2 (/v2/enqueue): routing_key (32 characters),
              event_action trigger|acknowledge|resolve, dedup_key (<= 255; required to
              acknowledge and resolve), for a trigger a payload with summary (<= 1024),
              source, severity critical|error|warning|info, an ISO 8601 timestamp, optional
              component/group/class strings and custom_details object; links of href/text.
              Answers 202 {"status":"success","message":"Event processed","dedup_key":...}.
  /hook       a signed generic webhook: X-Tsubame-Timestamp and X-Tsubame-Signature
              v1=<hex HMAC-SHA256 of "<timestamp>.<body>"> with SECRET; a JSON document
              with version 1 and type alert|report.

A payload that breaks its format gets 400 and is recorded with its errors. The first
FAIL_FIRST requests to /slack get 503 (to exercise retries). Every request is recorded as a
JSON line in OUT_FILE. Prints the port, then serves until killed.
Usage: ops_receiver.py OUT_FILE SECRET FAIL_FIRST"""
import datetime
import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out_path, secret, fail_first = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = {"slack_seen": 0}


def text_object(t, errors, where, limit):
    if not isinstance(t, dict) or t.get("type") not in ("plain_text", "mrkdwn"):
        errors.append(f"{where}: not a text object")
        return
    if not isinstance(t.get("text"), str) or not t["text"]:
        errors.append(f"{where}.text: missing")
    elif len(t["text"]) > limit:
        errors.append(f"{where}.text: over {limit}")


def check_slack(body):
    errors = []
    if not isinstance(body.get("text"), str) or not body["text"]:
        errors.append("text: the fallback is required")
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        errors.append("blocks: a list of at most 50")
        return errors
    for i, b in enumerate(blocks):
        kind = b.get("type")
        if kind == "header":
            t = b.get("text", {})
            if t.get("type") != "plain_text":
                errors.append(f"blocks[{i}].text: header text must be plain_text")
            text_object(t, errors, f"blocks[{i}].text", 150)
        elif kind == "section":
            if "text" not in b and "fields" not in b:
                errors.append(f"blocks[{i}]: a section needs text or fields")
            if "text" in b:
                text_object(b["text"], errors, f"blocks[{i}].text", 3000)
            fields = b.get("fields", [])
            if len(fields) > 10:
                errors.append(f"blocks[{i}].fields: at most 10")
            for j, f in enumerate(fields):
                text_object(f, errors, f"blocks[{i}].fields[{j}]", 2000)
        elif kind == "context":
            elements = b.get("elements", [])
            if not elements or len(elements) > 10:
                errors.append(f"blocks[{i}].elements: 1 to 10")
            for j, e in enumerate(elements):
                text_object(e, errors, f"blocks[{i}].elements[{j}]", 3000)
        elif kind != "divider":
            errors.append(f"blocks[{i}].type: {kind!r} not used by tsubame")
    return errors


def check_pagerduty(body):
    errors = []
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("routing_key: 32 characters")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("event_action: trigger, acknowledge or resolve")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("dedup_key: a string of at most 255")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("dedup_key: required to " + action)
    if action == "trigger":
        p = body.get("payload")
        if not isinstance(p, dict):
            errors.append("payload: required to trigger")
            return errors
        s = p.get("summary")
        if not isinstance(s, str) or not s or len(s) > 1024:
            errors.append("payload.summary: 1 to 1024 characters")
        if not isinstance(p.get("source"), str) or not p["source"]:
            errors.append("payload.source: required")
        if p.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("payload.severity: critical, error, warning or info")
        if "timestamp" in p:
            try:
                datetime.datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00"))
            except (TypeError, ValueError):
                errors.append("payload.timestamp: not ISO 8601")
        for k in ("component", "group", "class"):
            if k in p and not isinstance(p[k], str):
                errors.append(f"payload.{k}: a string")
        if "custom_details" in p and not isinstance(p["custom_details"], dict):
            errors.append("payload.custom_details: an object")
        for i, link in enumerate(body.get("links", [])):
            if not isinstance(link.get("href"), str):
                errors.append(f"links[{i}].href: required")
    return errors


def check_hook(headers, raw, body):
    errors = []
    ts = headers.get("x-tsubame-timestamp", "")
    sig = headers.get("x-tsubame-signature", "")
    want = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(want, s.strip()) for s in sig.split(",")):
        errors.append("signature: does not verify")
    if body.get("version") != 1 or body.get("type") not in ("alert", "report"):
        errors.append("version 1, type alert|report")
    return errors


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if self.path == "/slack":
            state["slack_seen"] += 1
            if state["slack_seen"] <= fail_first:
                self.answer(503, b"try later", {"path": self.path, "refused": True})
                return
        if not isinstance(body, dict):
            errors = ["body: not a JSON object"]
        elif self.path == "/slack":
            errors = check_slack(body)
        elif self.path == "/pagerduty":
            errors = check_pagerduty(body)
        elif self.path == "/hook":
            errors = check_hook(headers, raw, body)
        else:
            errors = ["unknown path"]
        record = {"path": self.path, "errors": errors, "body": body}
        if errors:
            self.answer(400, json.dumps({"errors": errors}).encode(), record)
        elif self.path == "/pagerduty":
            reply = {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
            self.answer(202, json.dumps(reply).encode(), record)
        else:
            self.answer(200, b"ok", record)

    def answer(self, status, payload, record):
        with open(out_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
