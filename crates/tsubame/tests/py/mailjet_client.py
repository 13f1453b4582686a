#!/usr/bin/env python3
"""The official Mailjet Python client (PyPI `mailjet_rest` >= 1.9) against tsubame, unchanged
but for its api_url. Usage: mailjet_client.py SCENARIO API_URL API_KEY SECRET_KEY; prints
one JSON object: the status and body, or the client's exception and its status."""
import base64
import json
import sys

from mailjet_rest import Client

try:  # >= 1.9 raises on errors; 1.3.x returns every response as it is.
    from mailjet_rest.errors import MailjetApiError
except ImportError:
    class MailjetApiError(Exception):
        pass


def message(to, subject="Flight plan", **extra):
    m = {"From": {"Email": "pilot@acme.test", "Name": "Pilot"},
         "To": [{"Email": to, "Name": "Passenger"}], "Subject": subject,
         "TextPart": "Dear passenger, may the force be with you!",
         "HTMLPart": "<h3>Dear passenger</h3>", "CustomID": "AppGettingStartedTest"}
    m.update(extra)
    return m


def main():
    scenario, url, key, secret = sys.argv[1:5]
    client = Client(auth=(key, secret), version="v3.1", api_url=url)
    if scenario == "send":
        data = {"Messages": [message("ann@x.test", Bcc=[{"Email": "audit@x.test"}],
                                     Headers={"X-Campaign": "mj-1"})]}
    elif scenario == "partial":
        data = {"Messages": [message("bob@x.test"), message("not-an-address")]}
    elif scenario == "templated":
        data = {"Messages": [message(
            "dan@x.test", subject="Order {{var:order}}",
            TextPart='Dear {{var:name:"customer"}}, order {{var:order}} is on its way.',
            HTMLPart='<p>Dear {{var:name:"customer"}} <img src="cid:logo"></p>',
            TemplateLanguage=True, Variables={"order": 42},
            Attachments=[{"ContentType": "application/pdf", "Filename": "invoice.pdf",
                          "Base64Content": base64.b64encode(b"%PDF-1.4 mailjet").decode()}],
            InlinedAttachments=[{"ContentType": "image/png", "Filename": "logo.png",
                                 "ContentID": "logo",
                                 "Base64Content": base64.b64encode(b"\x89PNG mailjet").decode()}],
            EventPayload="order-42", CustomCampaign="autumn")]}
    elif scenario == "sandbox":
        data = {"SandboxMode": True, "Messages": [message("carl@x.test")]}
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    try:
        response = client.send.create(data=data)
        print(json.dumps({"status": response.status_code, "body": response.json()}))
    except MailjetApiError as err:
        body = err.response_body
        try:
            body = json.loads(body)
        except (TypeError, ValueError):
            pass
        print(json.dumps({"status": err.status_code, "error": type(err).__name__, "body": body}))


main()
