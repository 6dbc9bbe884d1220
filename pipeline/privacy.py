"""Patient identifiers in outputs: a keyed hash, never the raw id unless asked for.

`keyed_hash` is HMAC-SHA256 of the id under a secret key, cut to 16 hex characters (64 bits):
stable for one key, so a clinic can look its own patients up, and not reversible or linkable
by anyone without the key (a plain hash of a short id could be brute-forced).

The key comes from the environment variable RELAPSE_ID_HASH_KEY (any string of at least 16
characters; e.g. `python -c "import secrets; print(secrets.token_hex(32))"`). Keep it secret
and the same across runs, or hashed ids will not match between reports.

When it is unset, `hash_key_from_env()` falls back to DEVELOPMENT_KEY, a fixed key published
here, so demos and tests work out of the box; the returned `HashKey.is_development` is then
True and reports must say "development key" next to hashed ids, since anyone can recompute
them. Pass `required=True` (for real patient data) to get a clear error instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

ENV_VAR = "RELAPSE_ID_HASH_KEY"
DEVELOPMENT_KEY = b"relapse-risk development key - not secret, not for real patient data"
MIN_KEY_CHARS = 16


class HashKeyError(RuntimeError):
    """The id-hashing key is missing where required, or too short to be a secret."""


@dataclass(frozen=True, repr=False)
class HashKey:
    """A secret for `keyed_hash`; `source` says where it came from (never the key itself)."""

    key: bytes
    source: str

    @property
    def is_development(self) -> bool:
        return self.key == DEVELOPMENT_KEY

    @property
    def label(self) -> str:
        """How reports describe the key: "development key" or "key from RELAPSE_ID_HASH_KEY"."""
        return "development key" if self.is_development else f"key from {self.source}"

    def __repr__(self) -> str:  # never print the secret
        return f"HashKey(source={self.source!r})"


def keyed_hash(patient_id: str, key: bytes | HashKey) -> str:
    """HMAC-SHA256 of the id under `key`, first 16 hex characters.

    >>> keyed_hash("P0001", b"0123456789abcdef")
    '8331802d3490a398'
    """
    secret = key.key if isinstance(key, HashKey) else key
    return hmac.new(secret, str(patient_id).encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def with_hashed_ids(frame: pl.DataFrame, key: bytes | HashKey) -> pl.DataFrame:
    """`frame` with each `patient_id` replaced by its `keyed_hash`, every distinct id hashed once,
    rows in their order.

    >>> with_hashed_ids(pl.DataFrame({"patient_id": ["P0001", "P0001"], "x": [1, 2]}), b"0123456789abcdef").rows()
    [('8331802d3490a398', 1), ('8331802d3490a398', 2)]
    """
    ids = frame["patient_id"].unique()
    hashes = pl.DataFrame({"patient_id": ids, "_hashed": [keyed_hash(p, key) for p in ids]},
                          schema={"patient_id": frame.schema["patient_id"], "_hashed": pl.String})
    return (frame.join(hashes, on="patient_id", how="left", maintain_order="left")
            .with_columns(pl.col("_hashed").alias("patient_id")).drop("_hashed"))


def hash_key_from_env(required: bool = False, environ: Mapping[str, str] | None = None) -> HashKey:
    """The key from RELAPSE_ID_HASH_KEY; when unset, the development key unless `required`."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR, "")
    if not value:
        if required:
            raise HashKeyError(
                f"{ENV_VAR} is not set: set it to a secret of at least {MIN_KEY_CHARS} characters "
                f'(e.g. the output of `python -c "import secrets; print(secrets.token_hex(32))"`) '
                "and keep it the same across runs so hashed patient ids stay comparable."
            )
        return HashKey(DEVELOPMENT_KEY, "development key")
    if len(value) < MIN_KEY_CHARS:
        raise HashKeyError(f"{ENV_VAR} has {len(value)} characters; use at least {MIN_KEY_CHARS}.")
    return HashKey(value.encode("utf-8"), ENV_VAR)
