#!/usr/bin/env python3
"""The official SendGrid Python client (PyPI `sendgrid`) against tsubame, unchanged but for
its host. Usage: sendgrid_client.py SCENARIO HOST_URL API_KEY; prints one JSON object."""
import base64
import json
import sys
import time

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (Attachment, Bcc, Category, Content, ContentId, CustomArg,
                                   Disposition, FileContent, FileName, FileType, Header, Mail,
                                   MailSettings, SandBoxMode, SendAt)

PDF = base64.b64encode(b"%PDF-1.4 sendgrid").decode()
PNG = base64.b64encode(b"\x89PNG sendgrid").decode()


def outcome(call):
    try:
        response = call()
        return {"status": response.status_code, "body": response.body.decode() if response.body else "",
                "message_id": response.headers.get("X-Message-Id")}
    except HTTPError as err:
        return {"status": err.status_code, "body": json.loads(err.body)}


def mail(subject="Hello from SendGrid's client"):
    message = Mail(from_email=("news@acme.test", "Acme"), to_emails=["ann@x.test", "bob@x.test"],
                   subject=subject, plain_text_content="Hi there.",
                   html_content="<p>Hi there.</p>")
    message.add_header(Header("X-Campaign", "sg-1"))
    message.add_bcc(Bcc("audit@x.test"))
    return message


def main():
    scenario, host, key = sys.argv[1:4]
    client = SendGridAPIClient(api_key=key, host=host)
    if scenario == "send":
        result = outcome(lambda: client.send(mail()))
    elif scenario == "attachments":
        message = Mail(from_email="news@acme.test", to_emails="ann@x.test", subject="Files",
                       plain_text_content="See the files.",
                       html_content='<p>Logo: <img src="cid:logo"></p>')
        message.attachment = [
            Attachment(FileContent(PDF), FileName("invoice.pdf"), FileType("application/pdf"),
                       Disposition("attachment")),
            Attachment(FileContent(PNG), FileName("logo.png"), FileType("image/png"),
                       Disposition("inline"), ContentId("logo")),
        ]
        message.category = [Category("invoice"), Category("eu")]
        message.custom_arg = [CustomArg("order", "42")]
        # Two seconds ahead: accepted now, delivered then.
        message.send_at = SendAt(int(time.time()) + 2)
        result = outcome(lambda: client.send(message))
    elif scenario == "sandbox":
        message = mail()
        message.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
        result = outcome(lambda: client.send(message))
    elif scenario == "invalid":
        message = mail(subject="line\r\nBcc: victim@elsewhere.test")
        result = outcome(lambda: client.send(message))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


main()
