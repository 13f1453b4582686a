#!/usr/bin/env python3
"""The official Mailjet Python client (PyPI `mailjet_rest`) managing contacts, lists,
properties, segments, CSV imports and templates on tsubame through Mailjet's v3 REST API,
then sending by template through /v3.1/send; unchanged but for its api_url.
Usage: mailjet_audience.py API_URL KEY SECRET OTHER_KEY OTHER_SECRET; prints one JSON
object: every step's status and body, by name."""
import json
import sys
import time

from mailjet_rest import Client
from mailjet_rest.errors import MailjetApiError

url, key, secret, other_key, other_secret = sys.argv[1:6]
v3 = Client(auth=(key, secret), version="v3", api_url=url)
v31 = Client(auth=(key, secret), version="v3.1", api_url=url)
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


call("age", lambda: v3.contactmetadata.create(
    data={"Datatype": "int", "Name": "age", "NameSpace": "static"}))
call("city", lambda: v3.contactmetadata.create(data={"Datatype": "str", "Name": "city"}))
call("metadata", lambda: v3.contactmetadata.get())
news = first_id(call("list", lambda: v3.contactslist.create(data={"Name": "Newsletter"})))
call("list_again", lambda: v3.contactslist.create(data={"Name": "Newsletter"}))
call("rename", lambda: v3.contactslist.update(id=news, data={"Name": "News"}))
ann = first_id(call("ann", lambda: v3.contact.create(data={"Email": "Ann@X.test", "Name": "Ann"})))
call("ann_again", lambda: v3.contact.create(data={"Email": "ann@x.test"}))
call("ann_data", lambda: v3.contactdata.update(id=ann, data={
    "Data": [{"Name": "age", "Value": "35"}, {"Name": "city", "Value": "Kyoto"}]}))
call("ann_data_get", lambda: v3.contactdata.get(id=ann))
call("bad_data", lambda: v3.contactdata.update(id=ann, data={
    "Data": [{"Name": "age", "Value": "old"}]}))
call("recipient", lambda: v3.listrecipient.create(data={"ContactID": ann, "ListID": news}))
call("recipient_again", lambda: v3.listrecipient.create(data={"ContactID": ann, "ListID": news}))
job = call("many", lambda: v3.contactslist_managemanycontacts.create(id=news, data={
    "Action": "addnoforce",
    "Contacts": [
        {"Email": "bob@x.test", "Name": "Bob", "Properties": {"age": 20, "city": "Osaka"}},
        {"Email": "cy@x.test", "Properties": {"age": "41", "city": "Kyoto"}},
        {"Email": "broken"},
    ]}))["Data"][0]["JobID"]
call("many_job", lambda: v3.contactslist_managemanycontacts.get(id=news, action_id=job))
bob = call("bob", lambda: v3.contact.get(id="bob@x.test"))["Data"][0]["ID"]
bob_recipient = first_id(call("bob_lists", lambda: v3.listrecipient.get(
    filters={"Contact": bob})))
call("bob_unsub", lambda: v3.listrecipient.update(id=bob_recipient,
                                                  data={"IsUnsubscribed": True}))
call("many_again", lambda: v3.contactslist_managemanycontacts.create(id=news, data={
    "Action": "addnoforce", "Contacts": [{"Email": "bob@x.test"}]}))
call("list_after", lambda: v3.contactslist.get(id=news))
call("members", lambda: v3.contact.get(filters={"ContactsList": news, "Limit": 2, "Offset": 1}))
call("recipients", lambda: v3.listrecipient.get(filters={"ContactsList": news}))
call("contact_lists", lambda: v3.contact_getcontactslists.get(id=ann))

csv = "email,name,age,city\r\ndan@x.test,Dan,28,Kyoto\r\nnot-an-address,Eve,30,Nara\r\n" \
      "bob@x.test,Bob,21,Osaka\r\nfay@x.test,Fay,x,Kobe\r\n"
data_id = call("upload", lambda: v3.contactslist_csvdata.create(id=news, data=csv))["ID"]
imported = first_id(call("import", lambda: v3.csvimport.create(data={
    "ContactsListID": news, "DataID": data_id, "Method": "addforce"})))
deadline = time.time() + 30
while time.time() < deadline:
    status = call("import_status", lambda: v3.csvimport.get(id=imported))
    if status["Data"][0]["Status"] in ("Completed", "Error"):
        break
    time.sleep(0.2)
call("import_errors", lambda: v3.batchjob_csverror.get(id=imported))
call("list_final", lambda: v3.contactslist.get(id=news))

call("filter", lambda: v3.contactfilter.create(data={
    "Name": "Kyoto adults", "Expression": '(age >= 30) AND (city = "Kyoto")'}))
call("bad_filter", lambda: v3.contactfilter.create(data={
    "Name": "Broken", "Expression": "(agee > 3)"}))
call("filters", lambda: v3.contactfilter.get())

receipt = first_id(call("template", lambda: v3.template.create(data={
    "Name": "Receipt", "Author": "shop", "Purposes": ["transactional"], "EditMode": 1,
    "Locale": "en_US"})))
call("content", lambda: v3.template_detailcontent.create(id=receipt, data={
    "Headers": {"Subject": "Receipt {{var:order}}"},
    "Html-part": '<p>Hi {{var:name:"there"}}, order {{var:order}}</p>',
    "Text-part": 'Hi {{var:name:"there"}}, order {{var:order}}'}))
call("content_get", lambda: v3.template_detailcontent.get(id=receipt))
call("templates", lambda: v3.template.get())


def templated(to, template_id, **extra):
    m = {"From": {"Email": "shop@acme.test"}, "To": [{"Email": to}],
         "TemplateID": template_id, "TemplateLanguage": True,
         "Variables": {"order": 7, "name": "Ann <3"}}
    m.update(extra)
    return m


call("send", lambda: v31.send.create(data={"Messages": [
    templated("ann@x.test", receipt),
    templated("bob@x.test", 999999),
    templated("cy@x.test", receipt, HTMLPart="<p>own</p>"),
]}))
call("content_after_send", lambda: v3.template_detailcontent.create(id=receipt, data={
    "Headers": {"Subject": "Receipt no. {{var:order}}"}, "Text-part": "v2 {{var:order}}"}))

call("stranger_list", lambda: stranger.contactslist.get(id=news))
call("stranger_contact", lambda: stranger.contact.get(id=ann))
call("stranger_template", lambda: stranger.template.get(id=receipt))
call("stranger_recipient", lambda: stranger.listrecipient.get(id=bob_recipient))
call("stranger_lists", lambda: stranger.contactslist.get())
call("remove_filter", lambda: v3.contactfilter.delete(
    id=steps["filter"]["body"]["Data"][0]["ID"]))
call("remove_recipient", lambda: v3.listrecipient.delete(id=bob_recipient))
call("list_end", lambda: v3.contactslist.get(id=news))
print(json.dumps(steps))
