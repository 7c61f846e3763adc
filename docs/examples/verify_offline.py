#!/usr/bin/env python3
"""Checks keyward's signed answers, offline license files and chunked-key check groups with
nothing but Python and a standard Ed25519 library, against the test vector beside this file.

    python3 -m pip install cryptography
    python3 docs/examples/verify_offline.py docs/examples/vector.json

Exit status 0 when every check behaves as docs/offline-licensing.md says, 1 otherwise. The
functions above `main` are meant to be copied into an application.
"""

import base64
import binascii
import hashlib
import json
import re
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_FILE_BYTES = 64 * 1024
CLOCK_TOLERANCE_SECONDS = 5 * 60
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Refused(Exception):
    """A signed answer or an offline file that must not be trusted."""


# --- keys --------------------------------------------------------------------------------------

def key_ring(public_keys):
    """kid -> public key, from the JSON of GET /api/v1/public-keys (current and retired keys)."""
    ring = {}
    for entry in public_keys["keys"]:
        if entry["alg"] != "ed25519":
            continue  # an algorithm this verifier does not know
        if entry.get("status", "current") not in ("current", "retired"):
            raise Refused(f"unknown key status {entry['status']!r}")
        raw = base64.b64decode(entry["public_key"], validate=True)
        ring[entry["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
    return ring


def b64url_decode(text):
    """Strict base64url without padding, as keyward writes it."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise Refused("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text:
        raise Refused("not canonical base64url")
    return raw


# --- signed answers ----------------------------------------------------------------------------

def signed_message(method, path, status, nonce, body):
    """The exact bytes an answer's signature covers."""
    path = path.split("?", 1)[0]
    head = f"{method.upper()} {path}\n{status:03d}\n{nonce}\n"
    return head.encode("utf-8") + body


def parse_signature_header(value):
    """`kid=<kid>, alg=ed25519, sig=<base64>` in any order -> (kid, 64 signature bytes)."""
    params = {}
    for part in value.split(","):
        name, equals, val = part.partition("=")
        name, val = name.strip(" \t"), val.strip(" \t")
        if not equals or name not in ("kid", "alg", "sig") or name in params or not val:
            raise Refused("malformed Keyward-Signature header")
        params[name] = val
    if len(params) != 3:
        raise Refused("malformed Keyward-Signature header")
    if params["alg"] != "ed25519":
        raise Refused(f"unsupported algorithm {params['alg']!r}")
    try:
        sig = base64.b64decode(params["sig"], validate=True)
    except binascii.Error:
        raise Refused("the signature is not base64") from None
    if len(sig) != 64:
        raise Refused("the signature is not 64 bytes")
    return params["kid"], sig


def verify_answer(ring, header, method, path, status, nonce, body):
    """Raises Refused unless `header` signs this answer; `nonce` is the one the request sent."""
    kid, sig = parse_signature_header(header)
    if kid not in ring:
        raise Refused(f"unknown kid {kid!r}")
    try:
        ring[kid].verify(sig, signed_message(method, path, status, nonce, body))
    except InvalidSignature:
        raise Refused("the signature does not match") from None


# --- offline files -----------------------------------------------------------------------------

def verify_offline_file(data, ring, now, fingerprint=None):
    """The claims of a good file at unix time `now`; raises Refused otherwise."""
    if len(data) > MAX_FILE_BYTES:
        raise Refused("the file is too large")
    try:
        envelope = json.loads(data.decode("utf-8"))
        payload, sig, alg, kid = (envelope[k] for k in ("payload", "sig", "alg", "kid"))
    except (UnicodeDecodeError, ValueError, TypeError, KeyError):
        raise Refused("the file is malformed") from None
    if not all(isinstance(v, str) for v in (payload, sig, alg, kid)):
        raise Refused("the file is malformed")
    if alg != "ed25519":
        raise Refused(f"unsupported algorithm {alg!r}")
    if kid not in ring:
        raise Refused(f"unknown kid {kid!r}")
    signature = b64url_decode(sig)
    if len(signature) != 64:
        raise Refused("the signature is not 64 bytes")
    try:
        # The signature covers the payload *text* (its base64url characters), not the decoded JSON.
        ring[kid].verify(signature, payload.encode("ascii"))
    except InvalidSignature:
        raise Refused("the signature does not match") from None
    claims = json.loads(b64url_decode(payload))
    if claims["exp"] <= now:
        raise Refused("the file has expired")
    bound = claims.get("fingerprint")
    if fingerprint is not None and bound is not None and bound != fingerprint:
        raise Refused("the file is bound to another device")
    return claims


def check_clock(now, last_seen):
    """Refuses a clock turned back; returns the new latest time seen (store it, e.g. in a file)."""
    if last_seen is not None and now < last_seen - CLOCK_TOLERANCE_SECONDS:
        raise Refused("the clock runs backwards")
    return max(now, last_seen or now)


# --- chunked keys ------------------------------------------------------------------------------

def normalize(key):
    """Crockford's reading: ASCII letters upper-cased, I and L as 1, O as 0."""
    upper = "".join(c.upper() if c.isascii() else c for c in key)
    return upper.translate(str.maketrans("ILO", "110"))


def check_sums(text, alphabet=CROCKFORD):
    """S1 and S2 of the check group over `text`, the normalized key before its last dash."""
    a = len(alphabet)
    p = next(n for n in range(a + 3, 2 * a + 8) if all(n % d for d in range(2, n)))
    s1 = s2 = 0
    for i, byte in enumerate(text.encode("utf-8")):
        char = chr(byte)
        v = alphabet.index(char) if char in alphabet else a if char == "-" else a + 1
        s1 = (s1 + v + 1) % p
        s2 = (s2 + (1 + i % (p - 1)) * (v + 1)) % p
    return s1, s2, p


def check_group(text, length, alphabet=CROCKFORD):
    a = len(alphabet)
    s1, s2, p = check_sums(text, alphabet)
    if length == 2:
        return alphabet[s2 // a % a] + alphabet[s2 % a]
    x = s1 * p + s2
    head = alphabet[x // (a * a) % a] + alphabet[x // a % a] + alphabet[x % a]
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return head + "".join(alphabet[h % a] for h in digest[: length - 3])


def key_looks_valid(key):
    """The SDK's offline typo check: False only for a mistyped default-alphabet chunked key."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}", key):
        return True
    groups = normalize(key).split("-")

    def is_group(g, length):
        return len(g) == length and all(c in CROCKFORD for c in g)

    lengths = [len(g) for g in groups if 2 <= len(g) <= 16 and is_group(g, len(g))]
    if not any(lengths.count(n) >= 2 for n in lengths):
        return True  # does not look like a chunked key: the server decides
    first, rest = groups[0], groups[1:]
    length = len(rest[-1])
    is_prefix = 1 <= len(first) <= 16 and first.isascii() and first.isalnum()
    shape = (
        2 <= length <= 16
        and all(is_group(g, length) for g in rest)
        and (is_group(first, length) or (len(rest) >= 2 and is_prefix))
    )
    if not shape:
        return False
    normalized = normalize(key)
    return check_group(normalized[: -length - 1], length) == rest[-1]


# --- the test vector ---------------------------------------------------------------------------

def main(path):
    vector = json.loads(Path(path).read_text(encoding="utf-8"))
    ring = key_ring(vector["public_keys"])
    failures = []

    def expect(label, ok):
        print(("ok    " if ok else "FAIL  ") + label)
        if not ok:
            failures.append(label)

    def refused(call):
        try:
            call()
        except Refused:
            return True
        return False

    answer = vector["answer"]
    body = answer["body"].encode("utf-8")
    args = (answer["method"], answer["path"], answer["status"], answer["nonce"])
    expect("the signed message is byte for byte the vector's",
           signed_message(*args, body) == answer["signed_message"].encode("utf-8"))
    expect("the signed answer verifies", not refused(lambda: verify_answer(ring, answer["header"], *args, body)))
    expect("a changed body is refused",
           refused(lambda: verify_answer(ring, answer["header"], *args, body.replace(b"true", b"false", 1))))
    expect("another nonce is refused (a replayed answer)",
           refused(lambda: verify_answer(ring, answer["header"], *args[:3], "another-nonce", body)))

    offline = vector["offline_file"]
    data = offline["file"].encode("utf-8")
    now, fingerprint = offline["now"], offline["fingerprint"]
    claims = verify_offline_file(data, ring, now, fingerprint)
    expect("the offline file verifies and gives its claims", claims == offline["claims"])
    expect("an expired file is refused", refused(lambda: verify_offline_file(data, ring, claims["exp"], fingerprint)))
    expect("another device is refused", refused(lambda: verify_offline_file(data, ring, now, "device-2")))
    tampered = json.loads(data)
    tampered["payload"] = tampered["payload"][:-2] + ("A" if tampered["payload"][-2] != "A" else "B") + tampered["payload"][-1]
    expect("a changed payload is refused",
           refused(lambda: verify_offline_file(json.dumps(tampered).encode(), ring, now, fingerprint)))
    last_seen = check_clock(now, max(claims["iat"], now))
    expect("a clock an hour behind the latest time seen is refused", refused(lambda: check_clock(now - 3600, last_seen)))
    expect("a clock a minute behind is tolerated", not refused(lambda: check_clock(now - 60, last_seen)))

    keys = vector["chunked_keys"]
    worked = keys["worked_example"]
    s1, s2, p = check_sums(worked["text"])
    expect(f"the worked example: p={p}, S1={s1}, S2={s2}, check group {worked['check_group']}",
           (s1, s2, p) == (worked["s1"], worked["s2"], 37)
           and check_group(worked["text"], 5) == worked["check_group"])
    for key in keys["valid"] + keys["valid_when_normalized"]:
        expect(f"key {key} passes the typo check", key_looks_valid(key))
    for key in keys["mistyped"]:
        expect(f"mistyped key {key} is caught", not key_looks_valid(key))
    expect("a UUID key passes the typo check", key_looks_valid("6fa459ea-ee8a-4ca4-894e-db77e160355e"))

    print(f"\n{len(failures)} failure(s)" if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    default = Path(__file__).with_name("vector.json")
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else default))
