#!/usr/bin/env python3
"""The official SendGrid Python client (PyPI `sendgrid`) managing custom fields, lists,
contacts and dynamic templates on tsubame, then sending by template through /v3/mail/send;
unchanged but for its host. Usage: sendgrid_audience.py HOST_URL KEY OTHER_KEY; prints one
JSON object: every step's status and body, by name."""
import json
import sys

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

host, key, other_key = sys.argv[1:4]
sg = SendGridAPIClient(api_key=key, host=host).client
stranger = SendGridAPIClient(api_key=other_key, host=host).client
steps = {}


def call(name, fn):
    try:
        response = fn()
        body = response.body.decode() if response.body else ""
        try:
            body = json.loads(body)
        except ValueError:
            pass
        steps[name] = {"status": response.status_code, "body": body}
    except HTTPError as err:
        try:
            body = json.loads(err.body)
        except (TypeError, ValueError):
            body = err.body.decode() if isinstance(err.body, bytes) else err.body
        steps[name] = {"status": err.status_code, "body": body}
    return steps[name]["body"]


call("field", lambda: sg.marketing.field_definitions.post(
    request_body={"name": "plan", "field_type": "Text"}))
call("field_score", lambda: sg.marketing.field_definitions.post(
    request_body={"name": "score", "field_type": "Number"}))
call("bad_field", lambda: sg.marketing.field_definitions.post(
    request_body={"name": "x", "field_type": "Blob"}))
call("fields", lambda: sg.marketing.field_definitions.get())
news = call("list", lambda: sg.marketing.lists.post(request_body={"name": "Newsletter"}))["id"]
call("lists", lambda: sg.marketing.lists.get(query_params={"page_size": 100}))
job = call("upsert", lambda: sg.marketing.contacts.put(request_body={
    "list_ids": [news],
    "contacts": [
        {"email": "ann@x.test", "first_name": "Ann", "country": "JP",
         "custom_fields": {"plan": "pro", "score": 9}},
        {"email": "bob@x.test", "first_name": "Bob", "custom_fields": {"score": "7"}},
        {"email": "not-an-address"},
        {"email": "cy@x.test", "postal_code": "100-0001"},
    ]}))["job_id"]
call("job", lambda: sg.marketing.contacts.imports._(job).get())
call("count", lambda: sg.marketing.contacts.count.get())
call("list_count", lambda: sg.marketing.lists._(news).contacts.count.get())
call("search", lambda: sg.marketing.contacts.search.emails.post(
    request_body={"emails": ["ann@x.test", "zed@x.test"]}))
call("search_none", lambda: sg.marketing.contacts.search.emails.post(
    request_body={"emails": ["zed@x.test"]}))
call("rename", lambda: sg.marketing.lists._(news).patch(request_body={"name": "News"}))
bob = steps["search"]["body"]  # keep shape checks in Rust

template = call("template", lambda: sg.templates.post(
    request_body={"name": "Order shipped", "generation": "dynamic"}))["id"]
call("legacy", lambda: sg.templates.post(request_body={"name": "Old"}))
version = call("version", lambda: sg.templates._(template).versions.post(request_body={
    "template_id": template, "active": 1, "name": "v1", "editor": "code",
    "subject": "Order {{order.id}} shipped",
    "html_content": "<p>Hi {{first_name}}</p><ul>{{#each items}}<li>{{this.name}}</li>{{/each}}</ul>"
                    "{{#if gift}}<p>gift wrapped</p>{{else}}<p>no wrap</p>{{/if}}",
    "plain_content": "Hi {{first_name}}, order {{order.id}}",
    "test_data": json.dumps({"first_name": "Test", "order": {"id": 1}, "items": []}),
}))["id"]
call("bad_version", lambda: sg.templates._(template).versions.post(request_body={
    "name": "broken", "subject": "{{#if x}}unclosed", "html_content": "<p>x</p>"}))
call("templates", lambda: sg.templates.get(query_params={"generations": "dynamic", "page_size": 18}))
call("template_get", lambda: sg.templates._(template).get())
call("version_get", lambda: sg.templates._(template).versions._(version).get())

call("send", lambda: sg.mail.send.post(request_body={
    "from": {"email": "shop@acme.test"},
    "template_id": template,
    "personalizations": [
        {"to": [{"email": "ann@x.test"}], "dynamic_template_data": {
            "first_name": "Ann <b>", "order": {"id": 42}, "gift": True,
            "items": [{"name": "Tea"}, {"name": "Cups"}]}},
        {"to": [{"email": "bob@x.test"}], "dynamic_template_data": {
            "first_name": "Bob", "order": {"id": 43}, "items": []}},
    ]}))
call("send_unknown", lambda: sg.mail.send.post(request_body={
    "from": {"email": "shop@acme.test"}, "template_id": "d-0123456789abcdef",
    "personalizations": [{"to": [{"email": "ann@x.test"}]}]}))
call("patch_used", lambda: sg.templates._(template).versions._(version).patch(
    request_body={"subject": "changed"}))

call("stranger_template", lambda: stranger.templates._(template).get())
call("stranger_list", lambda: stranger.marketing.lists._(news).get())
call("stranger_send", lambda: stranger.mail.send.post(request_body={
    "from": {"email": "x@beta.test"}, "template_id": template,
    "personalizations": [{"to": [{"email": "ann@x.test"}]}]}))
call("stranger_fields", lambda: stranger.marketing.field_definitions.get())
call("remove_field", lambda: sg.marketing.field_definitions._("score").delete())
call("remove_list", lambda: sg.marketing.lists._(news).delete(
    query_params={"delete_contacts": "true"}))
call("count_after", lambda: sg.marketing.contacts.count.get())
print(json.dumps(steps))
