#!/usr/bin/env python3
"""A tenant's application sending over SMTP with Python's smtplib: STARTTLS, AUTH with the
tenant's credentials, then each message of a JSON list, reporting every reply.

Usage: smtp_tenant.py HOST PORT USER PASSWORD MESSAGES_JSON
MESSAGES_JSON: [{"mail_from": ..., "from": ..., "to": ..., "subject": ...}, ...]
Prints {"login": code, "login_text": text (when refused), "sent": [{"code": int, "text": str}, ...]}.
"""
import json
import smtplib
import ssl
import sys

host, port, user, password, messages = sys.argv[1:6]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

smtp = smtplib.SMTP(host, int(port), timeout=20)
smtp.starttls(context=ctx)
try:
    code, _ = smtp.login(user, password)
except smtplib.SMTPAuthenticationError as err:
    print(json.dumps({"login": err.smtp_code, "login_text": err.smtp_error.decode(), "sent": []}))
    sys.exit(0)

sent = []
for m in json.loads(messages):
    content = (f"From: <{m['from']}>\r\nTo: <{m['to']}>\r\nSubject: {m['subject']}\r\n"
               f"\r\nHello from SMTP.\r\n").encode()
    try:
        smtp.sendmail(m["mail_from"], [m["to"]], content)
        sent.append({"code": 250, "text": ""})
    except smtplib.SMTPDataError as err:
        sent.append({"code": err.smtp_code, "text": err.smtp_error.decode()})
    except smtplib.SMTPSenderRefused as err:
        sent.append({"code": err.smtp_code, "text": err.smtp_error.decode()})
smtp.quit()
print(json.dumps({"login": code, "sent": sent}))
