#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for the email connector's tests: STARTTLS
with the given certificate (required before AUTH and mail when --require-tls),
AUTH PLAIN/LOGIN with one user, and every message received written as an
.eml file into --maildir. Prints "listening <port>" once it accepts
connections; stops when its standard input closes. Loopback only.

    python smtp-server.py --cert tls.crt --key tls.key --maildir DIR \\
        --user USER --password PASSWORD [--require-tls | --no-starttls]
"""
import argparse
import os
import ssl
import sys


from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Maildir:
    def __init__(self, path):
        self.path = path
        self.n = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's naming)
        self.n += 1
        name = os.path.join(self.path, "%03d.eml" % self.n)
        with open(name + ".tmp", "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(b"X-TLS: " + (b"yes" if session.ssl else b"no") + b"\r\n")
            f.write(envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode())
        os.rename(name + ".tmp", name)
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--maildir", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--no-starttls", action="store_true")
    a = p.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == a.user.encode() \
            and auth_data.password == a.password.encode()
        # handled=False: aiosmtpd answers 535 itself.
        return AuthResult(success=ok, handled=False)

    tls = None
    if not a.no_starttls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)
    controller = Controller(
        Maildir(a.maildir), hostname="127.0.0.1", port=free_port(),
        tls_context=tls, require_starttls=a.require_tls, authenticator=authenticator,
        auth_required=True, auth_require_tls=not a.no_starttls,
    )
    controller.start()
    print("listening %d" % controller.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
