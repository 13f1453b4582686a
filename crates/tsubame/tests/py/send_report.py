#!/usr/bin/env python3
"""Plays a remote mail server sending a report back to a return path, with Python's email
package building it and smtplib sending it (MAIL FROM:<>, no AUTH, no relay rights).

Usage: send_report.py HOST PORT RETURN_PATH KIND RECIPIENT
KIND: dsn (RFC 3464, RECIPIENT failed 5.1.1), arf (RFC 5965 abuse report about a message
to RECIPIENT), text (a qmail-style bounce naming RECIPIENT).
Prints {"code": int, "text": str} of the end of data, or of the refused RCPT."""
import json
import smtplib
import sys
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

host, port, return_path, kind, recipient = sys.argv[1:6]

if kind == "dsn":
    report = MIMEMultipart("report", report_type="delivery-status")
    report.attach(MIMEText("Your message could not be delivered.\n"))
    # The generator writes message/delivery-status as header blocks (per message, then per
    # recipient), which is how RFC 3464 lays it out.
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; mx.remote.test"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = (f"smtp; 550 5.1.1 <{recipient}>: Recipient address "
                                        "rejected: User unknown in virtual mailbox table")
    status = MIMEBase("message", "delivery-status")
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    original = EmailMessage()
    original["From"] = "news@acme.test"
    original["To"] = recipient
    original["Subject"] = "Hello"
    original.set_content("Hello.\n")
    report.attach(MIMEMessage(original))
    message = report
elif kind == "arf":
    report = MIMEMultipart("report", report_type="feedback-report")
    report.attach(MIMEText("This is an email abuse report.\n"))
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload("Feedback-Type: abuse\nUser-Agent: RemoteFBL/1.0\nVersion: 1\n"
                         f"Original-Rcpt-To: {recipient}\n")
    report.attach(feedback)
    original = EmailMessage()
    original["From"] = "news@acme.test"
    original["To"] = recipient
    original["Subject"] = "Sale"
    original.set_content("Buy now.\n")
    report.attach(MIMEMessage(original))
    message = report
else:
    message = EmailMessage()
    message.set_content(
        "Hi. This is the qmail-send program at mx.remote.test.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{recipient}>:\n198.51.100.7 does not like recipient.\n"
        "Remote host said: 550 5.1.1 Sorry, no mailbox here by that name.\n")
message["From"] = "MAILER-DAEMON@mx.remote.test"
message["To"] = return_path
message["Subject"] = "Delivery report"

smtp = smtplib.SMTP(host, int(port), timeout=20)
smtp.ehlo("mx.remote.test")
code, _ = smtp.mail("<>")
code, text = smtp.rcpt(return_path)
if code != 250:
    print(json.dumps({"code": code, "text": text.decode()}))
    sys.exit(0)
# A str is sent with CRLF line endings (bytes would go as they are).
code, text = smtp.data(message.as_string())
smtp.quit()
print(json.dumps({"code": code, "text": text.decode()}))
