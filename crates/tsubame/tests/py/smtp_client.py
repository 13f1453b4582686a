#!/usr/bin/env python3
"""Real-client scenarios against a running tsubame, using Python's standard smtplib and ssl.

Usage: smtp_client.py SCENARIO HOST PORT [ARGS...]; prints one JSON object on stdout.
The Rust integration tests call this and check the result against the server's queue.
"""
import json
import re
import smtplib
import socket
import ssl
import sys

QUEUED = re.compile(rb"queued as ([0-9A-Z]{26})")


def insecure_context():
    # The server's certificate is self-signed on first start; these tests check the protocol,
    # not the PKI.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(n, sender="sender@example.org", to="rcpt@example.com", extra=""):
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: test {n}\r\nMessage-ID: <m{n}@example.org>\r\n"
            f"{extra}\r\nBody of message {n}.\r\n.leading dot line\r\n").encode()


def send_one(smtp, n, sender, to, options=()):
    code, _ = smtp.mail(sender, list(options))
    assert code == 250, code
    code, _ = smtp.rcpt(to)
    assert code == 250, code
    code, resp = smtp.data(message(n, sender, to))
    match = QUEUED.search(resp)
    return {"code": code, "id": match.group(1).decode() if match else None, "n": n}


def starttls_auth(host, port, user, password, mechanism):
    smtp = smtplib.SMTP(host, int(port), timeout=20)
    smtp.ehlo("client.example")
    before = smtp.esmtp_features.copy()
    smtp.starttls(context=insecure_context())
    smtp.ehlo("client.example")
    after = smtp.esmtp_features.copy()
    smtp.user, smtp.password = user, password
    if mechanism == "LOGIN":
        smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
    else:
        smtp.auth("PLAIN", smtp.auth_plain)
    sent = [send_one(smtp, n, "sender@example.org", "rcpt@example.com") for n in range(3)]
    smtp.quit()
    return {"auth_before_tls": "auth" in before, "auth_after_tls": after.get("auth", ""),
            "starttls_after_tls": "starttls" in after, "sent": sent}


def wrong_password(host, port, user):
    smtp = smtplib.SMTP(host, int(port), timeout=20)
    smtp.starttls(context=insecure_context())
    try:
        smtp.login(user, "wrong password")
        return {"error": None}
    except smtplib.SMTPAuthenticationError as err:
        return {"error": err.smtp_code, "text": err.smtp_error.decode()}


def implicit_tls(host, port):
    smtp = smtplib.SMTP_SSL(host, int(port), context=insecure_context(), timeout=20)
    smtp.ehlo("client.example")
    sent = [send_one(smtp, 100, "sender@example.org", "rcpt@example.com")]
    smtp.quit()
    return {"sent": sent}


def smtputf8(host, port):
    smtp = smtplib.SMTP(host, int(port), timeout=20)
    smtp.ehlo("client.example")
    sender, to = "送信者@例え.jp", "受信者@例え.jp"
    body = ("From: <送信者@例え.jp>\r\nTo: <受信者@例え.jp>\r\nSubject: こんにちは\r\n"
            "\r\n本文です。\r\n").encode()
    smtp.command_encoding = "utf-8"  # let the raw UTF-8 command reach the server
    code, resp = smtp.docmd("MAIL", "FROM:<送信者@例え.jp>")  # without SMTPUTF8: must be refused
    refused = code
    smtp.rset()
    response = smtp.sendmail(sender, [to], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    features = sorted(smtp.esmtp_features.keys())
    smtp.quit()
    return {"features": features, "refused_without": refused, "response": str(response)}


def pipelined(host, port, count):
    """One connection, every transaction sent as a single write (RFC 2920)."""
    sock = socket.create_connection((host, int(port)), timeout=20)
    f = sock.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)

    reply()
    sock.sendall(b"EHLO pipeline.example\r\n")
    ehlo = reply()
    ids = []
    for n in range(int(count)):
        sock.sendall(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        codes = [reply()[:3] for _ in range(4)]
        assert codes == [b"250", b"250", b"250", b"354"], codes
        sock.sendall(message(n, "p@example.org", "a@example.com") + b".\r\n")
        match = QUEUED.search(reply())
        ids.append(match.group(1).decode() if match else None)
    sock.sendall(b"QUIT\r\n")
    reply()
    return {"pipelining": b"PIPELINING" in ehlo, "ids": ids}


def untrusted(host, port):
    smtp = smtplib.SMTP(host, int(port), timeout=20)
    try:
        smtp.sendmail("a@example.org", ["victim@example.com"], message(1))
        return {"refused": None}
    except smtplib.SMTPRecipientsRefused as err:
        (code, text), = err.recipients.values()
        return {"refused": code, "text": text.decode()}


def starttls_injection(host, port):
    """Plaintext pipelined after STARTTLS must be discarded, not run under TLS."""
    sock = socket.create_connection((host, int(port)), timeout=20)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(b"EHLO x\r\n")
    while f.readline()[3:4] == b"-":
        pass
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
    ready = f.readline()
    tls = insecure_context().wrap_socket(sock, server_hostname="mx.test")
    tf = tls.makefile("rb")
    tls.sendall(b"EHLO y\r\n")
    while tf.readline()[3:4] == b"-":
        pass
    tls.sendall(b"RCPT TO:<victim@example.com>\r\n")
    after = tf.readline()
    return {"ready": ready.decode().strip(), "rcpt_reply": after.decode().strip()}


SCENARIOS = {
    "starttls_auth": starttls_auth,
    "wrong_password": wrong_password,
    "implicit_tls": implicit_tls,
    "smtputf8": smtputf8,
    "pipelined": pipelined,
    "untrusted": untrusted,
    "starttls_injection": starttls_injection,
}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]](*sys.argv[2:])))
