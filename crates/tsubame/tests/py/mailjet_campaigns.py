#!/usr/bin/env python3
"""The official Mailjet Python client (PyPI `mailjet_rest`) running a campaign on tsubame
through Mailjet's v3 REST API, unchanged but for its api_url: a contact property, a list
and a segment, a campaign draft with its content in Mailjet's template language, a test
send, errors, a schedule set, read and removed, the send, and the campaign's statcounters
until every message is delivered.
Usage: mailjet_campaigns.py API_URL KEY SECRET OTHER_KEY OTHER_SECRET; prints one JSON
object: every step's status and body, by name."""
import json
import sys
import time
from datetime import datetime, timedelta, timezone

from mailjet_rest import Client
from mailjet_rest.errors import MailjetApiError

url, key, secret, other_key, other_secret = sys.argv[1:6]
v3 = Client(auth=(key, secret), version="v3", api_url=url)
stranger = Client(auth=(other_key, other_secret), version="v3", api_url=url)
steps = {}


def call(name, fn):
    try:
        response = fn()
        try:
            body = response.json()
        except ValueError:
            body = response.text
        steps[name] = {"status": response.status_code, "body": body}
    except MailjetApiError as err:
        body = err.response_body
        try:
            body = json.loads(body)
        except (TypeError, ValueError):
            pass
        steps[name] = {"status": err.status_code, "body": body}
    return steps[name]["body"]


def first_id(body):
    return body["Data"][0]["ID"]


call("property", lambda: v3.contactmetadata.create(data={"Datatype": "str", "Name": "firstname"}))
news = first_id(call("list", lambda: v3.contactslist.create(data={"Name": "Campaign readers"})))
people = [("mc%d@x.test" % i, "Name%d" % i if i % 2 == 0 else None) for i in range(6)]
for email, first in people:
    contact = first_id(call("contact_" + email, lambda: v3.contact.create(data={"Email": email})))
    if first:
        call("data_" + email, lambda: v3.contactdata.update(
            id=contact, data={"Data": [{"Name": "firstname", "Value": first}]}))
    call("member_" + email, lambda: v3.listrecipient.create(
        data={"ContactID": contact, "ListID": news}))
named = first_id(call("filter", lambda: v3.contactfilter.create(data={
    "Name": "Named", "Expression": '(firstname = "Name0") OR (firstname = "Name2")'})))

draft = {
    "Locale": "en_US", "Sender": "Acme News", "SenderEmail": "news@acme.test",
    "Subject": 'Hello [[data:firstname:"friend"]]', "ContactsListID": news,
    "Title": "December letter",
}
call("missing_subject", lambda: v3.campaigndraft.create(data={
    k: v for k, v in draft.items() if k != "Subject"}))
call("injected", lambda: v3.campaigndraft.create(data=dict(draft, Subject="a\r\nBcc: x@evil.test")))
call("unknown_list", lambda: v3.campaigndraft.create(data=dict(draft, ContactsListID=999999)))
letter = first_id(call("draft", lambda: v3.campaigndraft.create(data=draft)))
call("no_body_send", lambda: v3.campaigndraft_send.create(id=letter))
call("content", lambda: v3.campaigndraft_detailcontent.create(id=letter, data={
    "Html-part": '<p>Dear [[data:firstname:"friend"]], our December news.</p>',
    "Text-part": 'Dear [[data:firstname:"friend"]], our December news.'}))
call("content_put", lambda: v3.campaigndraft_detailcontent.update(id=letter, data={
    "Text-part": 'Dear [[data:firstname:"friend"]], our December news (text).'}))
call("content_get", lambda: v3.campaigndraft_detailcontent.get(id=letter))
call("test", lambda: v3.campaigndraft_test.create(id=letter, data={
    "Recipients": [{"Email": "mcproof@x.test", "Name": "Proof"}]}))
call("stranger_get", lambda: stranger.campaigndraft.get(id=letter))
call("stranger_send", lambda: stranger.campaigndraft_send.create(id=letter))

later = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
call("schedule_past", lambda: v3.campaigndraft_schedule.create(id=letter, data={
    "Date": "2020-01-01T09:00:00+01:00"}))
call("schedule", lambda: v3.campaigndraft_schedule.create(id=letter, data={
    "Date": later.strftime("%Y-%m-%dT%H:%M:%S")}))
call("scheduled_draft", lambda: v3.campaigndraft.get(id=letter))
call("schedule_get", lambda: v3.campaigndraft_schedule.get(id=letter))
call("unschedule", lambda: v3.campaigndraft_schedule.delete(id=letter))
call("unscheduled_draft", lambda: v3.campaigndraft.get(id=letter))

call("send", lambda: v3.campaigndraft_send.create(id=letter))
call("send_again", lambda: v3.campaigndraft_send.create(id=letter))

filtered = first_id(call("filtered_draft", lambda: v3.campaigndraft.create(data=dict(
    draft, Title="Named only", Subject="Only for you", SegmentationID=named))))
call("filtered_content", lambda: v3.campaigndraft_detailcontent.create(id=filtered, data={
    "Text-part": "Just for the named."}))
call("filtered_send", lambda: v3.campaigndraft_schedule.create(id=filtered, data={"Date": "NOW"}))

stats = {"MessageSentCount": 0}
deadline = time.time() + 60
while time.time() < deadline:
    body = call("stats", lambda: v3.statcounters.get(filters={
        "CounterSource": "Campaign", "CounterTiming": "Message",
        "CounterResolution": "Lifetime", "SourceId": letter}))
    stats = body["Data"][0] if isinstance(body, dict) and body.get("Data") else stats
    if stats.get("MessageSentCount") == len(people):
        break
    time.sleep(0.2)
call("stats_bad", lambda: v3.statcounters.get(filters={
    "CounterSource": "Campaign", "CounterTiming": "Message",
    "CounterResolution": "Day", "SourceId": letter}))
call("stats_stranger", lambda: stranger.statcounters.get(filters={
    "CounterSource": "Campaign", "CounterTiming": "Message",
    "CounterResolution": "Lifetime", "SourceId": letter}))
call("sent_draft", lambda: v3.campaigndraft.get(id=letter))
call("drafts", lambda: v3.campaigndraft.get(filters={"Limit": 10}))
print(json.dumps(steps))
