#!/usr/bin/env python3
"""Python smtplib against a running `tsubame sink`: each scenario prints one JSON object with
the replies the client saw, for the Rust integration tests to check.

Usage: sink_client.py SCENARIO HOST PORT
"""
import json
import smtplib
import ssl
import sys
import time

MESSAGE = b"From: <a@example.org>\r\nTo: <ok@x.test>\r\nSubject: sink\r\n\r\nHello sink.\r\n"


def insecure_context():
    # The sink's certificate is made up on start; these tests check the protocol, not the PKI.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def triggers(host, port):
    """STARTTLS, then one message to an ordinary recipient and two triggers."""
    smtp = smtplib.SMTP(host, port, timeout=30)
    smtp.ehlo()
    offered = smtp.has_extn("starttls")
    smtp.starttls(context=insecure_context())
    smtp.ehlo()
    refused = smtp.sendmail("a@example.org", ["ok@x.test", "tempfail+1@x.test", "PermFail+2@x.test"], MESSAGE)
    smtp.quit()
    return {"starttls_offered": offered,
            "refused": {k: [v[0], v[1].decode()] for k, v in refused.items()}}


def shares(host, port):
    """One transaction with 1,000 recipients: how many did the RCPT shares refuse?"""
    smtp = smtplib.SMTP(host, port, timeout=30)
    smtp.ehlo()
    smtp.mail("a@example.org")
    codes = [smtp.rcpt(f"user{i}@x.test")[0] for i in range(1000)]
    smtp.rset()
    smtp.quit()
    return {"codes": {str(c): codes.count(c) for c in set(codes)}}


def limits(host, port):
    """Holds one connection while a second is refused, then sends until the sink recycles
    the connection; every end of data is refused with a 4xx by the data share."""
    first = smtplib.SMTP(host, port, timeout=30)
    first.ehlo()
    try:
        second = smtplib.SMTP(host, port, timeout=30)
        second_result = ["connected", second.noop()[0]]
    except smtplib.SMTPConnectError as err:
        second_result = ["refused", err.smtp_code]
    data_codes = []
    for _ in range(3):
        try:
            started = time.monotonic()
            first.sendmail("a@example.org", ["ok@x.test"], MESSAGE)
            data_codes.append([250, time.monotonic() - started])
        except smtplib.SMTPDataError as err:
            data_codes.append([err.smtp_code, time.monotonic() - started])
        except smtplib.SMTPSenderRefused as err:
            data_codes.append(["mail", err.smtp_code])
        except smtplib.SMTPServerDisconnected:
            data_codes.append(["disconnected", 0])
    return {"second": second_result, "data": data_codes}


SCENARIOS = {"triggers": triggers, "shares": shares, "limits": limits}

if __name__ == "__main__":
    name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(SCENARIOS[name](host, port)))
