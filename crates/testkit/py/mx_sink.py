#!/usr/bin/env python3
"""A receiving MX for tsubame's delivery tests, built on aiosmtpd (a real SMTP server we did
not write). It behaves by recipient local part, records every connection and message as JSON
lines, and can offer STARTTLS.

Recipient local parts:
  reject*     RCPT -> 550 5.1.1 No such user
  full*       RCPT -> 552 5.2.2 Mailbox full
  defer*      RCPT -> 451 4.3.0 Try again later
  flaky*      first RCPT for the address -> 451 4.3.0, later ones 250
  tss04*      RCPT -> 421 4.7.0 [TSS04] Messages temporarily deferred due to unexpected volume
  hang*       the reply to the final dot never comes (the client must time out)
  anything else -> 250

Options:
  --listen HOST:PORT    (repeatable)
  --record FILE         JSON lines: connect/disconnect (with the concurrent count), message;
                        each with "t", the Unix time in seconds
  --tls CERT KEY        offer STARTTLS with this certificate
  --data-delay SECONDS  wait before answering the final dot (holds connections open)
  --greeting "421 ..."  answer every connection with this line and close (no SMTP at all)
"""

import argparse
import asyncio
import json
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP

state = {"concurrent": 0, "max_concurrent": 0, "seen": set(), "messages": 0}


def record(out, **event):
    if out is not None:
        event["t"] = time.time()
        out.write(json.dumps(event) + "\n")
        out.flush()


class Handler:
    def __init__(self, out, data_delay):
        self.out = out
        self.data_delay = data_delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 No such user here"
        if local.startswith("full"):
            return "552 5.2.2 Mailbox full"
        if local.startswith("defer"):
            return "451 4.3.0 Try again later"
        if local.startswith("tss04"):
            return "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints"
        if local.startswith("flaky") and address not in state["seen"]:
            state["seen"].add(address)
            return "451 4.3.0 Greylisted, come back later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(a.split("@", 1)[0].lower().startswith("hang") for a in envelope.rcpt_tos):
            await asyncio.sleep(3600)
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        state["messages"] += 1
        record(
            self.out,
            event="message",
            sender=envelope.mail_from,
            recipients=envelope.rcpt_tos,
            mail_options=envelope.mail_options,
            rcpt_options=envelope.rcpt_options,
            bytes=len(envelope.original_content or b""),
            content=(envelope.original_content or b"").decode("utf-8", "replace"),
            tls=session.ssl is not None,
            concurrent=state["concurrent"],
        )
        return "250 2.0.0 Queued as %d" % state["messages"]


class CountingSMTP(SMTP):
    def __init__(self, *args, out=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.out = out
        self.counted = False

    def connection_made(self, transport):
        # connection_made runs again after STARTTLS; count each TCP connection once.
        if not self.counted:
            self.counted = True
            state["concurrent"] += 1
            state["max_concurrent"] = max(state["max_concurrent"], state["concurrent"])
            record(self.out, event="connect", concurrent=state["concurrent"])
        super().connection_made(transport)

    def connection_lost(self, exc):
        if self.counted:
            self.counted = False
            state["concurrent"] -= 1
            record(self.out, event="disconnect", concurrent=state["concurrent"])
        super().connection_lost(exc)


async def refuse(greeting, out, reader, writer):
    record(out, event="connect", concurrent=1)
    writer.write((greeting + "\r\n").encode())
    await writer.drain()
    writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", action="append", required=True)
    p.add_argument("--record")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--data-delay", type=float, default=0.0)
    p.add_argument("--greeting")
    args = p.parse_args()
    out = open(args.record, "a") if args.record else None
    loop = asyncio.get_running_loop()
    tls = None
    if args.tls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls[0], args.tls[1])
    handler = Handler(out, args.data_delay)
    servers = []
    for listen in args.listen:
        host, port = listen.rsplit(":", 1)
        host = host.strip("[]")
        if args.greeting:
            server = await asyncio.start_server(
                lambda r, w: refuse(args.greeting, out, r, w), host, int(port)
            )
        else:
            server = await loop.create_server(
                lambda: CountingSMTP(
                    handler,
                    out=out,
                    tls_context=tls,
                    hostname="sink.test",
                    enable_SMTPUTF8=True,
                    data_size_limit=50 * 1024 * 1024,
                ),
                host,
                int(port),
            )
        servers.append(server)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
