#!/usr/bin/env python3
"""Verify a Release Passport attestation with securesystemslib, without releasepassport.

usage: verify_passport.py PUBLIC_KEY.pem ATTESTATION sha256:<image digest> [--keyid ID]

ATTESTATION is a passport.intoto.jsonl (one DSSE envelope per line; the first
is checked), a bare envelope, or a passport.json with an `envelope` field.
Exits 0 and prints the verified verdict as JSON when the DSSE signature holds
for the key, the signed payload is an in-toto Statement v1 carrying a SLSA
verification summary, and one of its subjects is the image digest. Exits 1
otherwise, with the reason on standard error. Everything printed is read from
the verified payload bytes, never from fields beside the envelope.

Needs: pip install "securesystemslib[crypto]"
"""

import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
VSA = "https://slsa.dev/verification_summary/v1"
PASSPORT = "https://releasepassport.io/passport/v1"


def default_keyid(public_key):
    """rp- and the first 16 hex digits of the SHA-256 of the raw key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "rp-" + hashlib.sha256(raw).hexdigest()[:16]


def load_envelope(path):
    text = open(path, encoding="utf-8").read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:  # .intoto.jsonl with several lines
        document = json.loads(next(l for l in text.splitlines() if l.strip()))
    return document.get("envelope", document)


def verify(public_key_pem, attestation, digest, keyid=None):
    public_key = load_pem_public_key(open(public_key_pem, "rb").read())
    key = SSlibKey.from_crypto(
        public_key, keyid=keyid or default_keyid(public_key), scheme="ed25519"
    )
    envelope = Envelope.from_dict(load_envelope(attestation))
    if envelope.payload_type != "application/vnd.in-toto+json":
        raise ValueError(f"payload type {envelope.payload_type!r} is not in-toto's")
    envelope.verify([key], 1)  # raises VerificationError
    statement = json.loads(envelope.payload)  # the verified bytes, and only them
    if statement.get("_type") != STATEMENT_TYPE:
        raise ValueError(f"not an in-toto Statement v1: {statement.get('_type')!r}")
    if statement.get("predicateType") != VSA:
        raise ValueError(f"not a verification summary: {statement.get('predicateType')!r}")
    algorithm, _, hex_digest = digest.partition(":")
    if not any(s.get("digest", {}).get(algorithm) == hex_digest for s in statement["subject"]):
        raise ValueError(f"the Statement is not about {digest}")
    vsa = statement["predicate"]
    passport = vsa[PASSPORT]
    return {
        "verificationResult": vsa["verificationResult"],
        "verifiedLevels": vsa["verifiedLevels"],
        "decision": passport["decision"],
        "service": passport["service"],
        "release": passport["release"],
        "environment": passport["environment"],
        "mode": passport["mode"],
        "keyid": key.keyid,
    }


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--keyid")]
    keyid = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--keyid=")), None)
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        verdict = verify(args[0], args[1], args[2], keyid)
    except Exception as e:  # every failure is a refusal
        print(f"not verified: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
