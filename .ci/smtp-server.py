"""A throwaway SMTP relay for shopsafe's tests (aiosmtpd), on 127.0.0.1.

Usage: python3 .ci/smtp-server.py DIR   (DIR holds tls/server.{crt,key} made by smtp-start)

Listens on two ports, written to DIR/plain.port and DIR/starttls.port (the second one
requires STARTTLS before MAIL). Every accepted mail is appended to DIR/mail.jsonl as
{"to": [...], "from": ..., "message_id": ..., "tls": ..., "data": raw, "text": every
part decoded}. Recipients steer the
replies, by the start of their local part:
  reject...   RCPT answers 550 (a permanent refusal)
  defer...    RCPT answers 451 the first time for that address, 250 after
  deferall... RCPT always answers 451
anything else is accepted.
"""

import asyncio
import email
import json
import os
import signal
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Relay:
    def __init__(self, out):
        self.out = out
        self.deferred = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("deferall"):
            return "451 4.3.0 try again later"
        if local.startswith("defer"):
            with self.lock:
                first = address not in self.deferred
                self.deferred.add(address)
            if first:
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.content.decode("utf-8", "replace")
        msg = email.message_from_string(data)
        text = "".join(
            part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8", "replace")
            for part in msg.walk()
            if not part.is_multipart()
        )
        line = json.dumps(
            {
                "to": envelope.rcpt_tos,
                "from": envelope.mail_from,
                "message_id": msg.get("Message-ID"),
                "tls": session.ssl is not None,
                "data": data,
                "text": text,
            }
        )
        with self.lock:
            with open(self.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        return "250 OK queued"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    d = sys.argv[1]
    relay = Relay(os.path.join(d, "mail.jsonl"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(d, "tls", "server.crt"), os.path.join(d, "tls", "server.key"))
    plain_port, tls_port = free_port(), free_port()
    plain = Controller(relay, hostname="127.0.0.1", port=plain_port)
    starttls = Controller(
        relay, hostname="127.0.0.1", port=tls_port, tls_context=ctx, require_starttls=True
    )
    plain.start()
    starttls.start()
    for name, port in (("plain.port", plain_port), ("starttls.port", tls_port)):
        with open(os.path.join(d, name + ".tmp"), "w") as f:
            f.write(str(port))
        os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    plain.stop()
    starttls.stop()


if __name__ == "__main__":
    main()
