"""HMAC-SHA256 of many short messages under one key, as `hmac.new(key, message, sha256)` gives it
(RFC 2104) at a third of its cost a message: the padded key is absorbed once and the two SHA-256
states are copied per message. PII tokens and the rollout's cell assignment hash millions a month."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

_INNER_PAD, _OUTER_PAD = bytes(x ^ 0x36 for x in range(256)), bytes(x ^ 0x5C for x in range(256))


def hmac_sha256_digests(key: bytes, messages: Iterable[bytes], prefix: bytes = b"") -> Iterator[bytes]:
    """Each message's HMAC-SHA256 digest under `key`, of `prefix` followed by the message."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner, outer = hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))
    inner.update(prefix)
    for message in messages:
        absorbed = inner.copy()
        absorbed.update(message)
        keyed = outer.copy()
        keyed.update(absorbed.digest())
        yield keyed.digest()
