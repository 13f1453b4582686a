#!/usr/bin/env python3
"""A webhook receiver for tests: Python's http.server on 127.0.0.1, recording every POST
(headers and body) as a JSON line in OUT_FILE. CONTROL_FILE says how to answer: "down"
503 (an endpoint that is down), "hang" nothing for 60 s (a dead endpoint that keeps the
connection), "redirect <url>" 307 to url; anything else 200. Prints the port on stdout, then serves
until killed. Usage: webhook_receiver.py OUT_FILE CONTROL_FILE"""
import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out_path, control_path = sys.argv[1:3]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            with open(control_path) as f:
                mode = f.read().strip()
        except FileNotFoundError:
            mode = "up"
        down = mode != "up"
        if mode == "hang":
            time.sleep(60)
            return
        record = {"path": self.path, "down": down,
                  "headers": {k.lower(): v for k, v in self.headers.items()},
                  "body": base64.b64encode(body).decode()}
        with open(out_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if mode.startswith("redirect "):
            self.send_response(307)
            self.send_header("Location", mode.split(" ", 1)[1])
        else:
            self.send_response(503 if down else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
