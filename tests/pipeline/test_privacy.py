import re

import pytest

from pipeline.privacy import (
    DEVELOPMENT_KEY,
    ENV_VAR,
    HashKeyError,
    hash_key_from_env,
    keyed_hash,
)


def test_keyed_hash_is_16_hex_characters_stable_and_key_dependent():
    first = keyed_hash("P0001", b"k" * 32)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert keyed_hash("P0001", b"k" * 32) == first
    assert keyed_hash("P0001", b"j" * 32) != first
    assert keyed_hash("P0002", b"k" * 32) != first


def test_unset_key_falls_back_to_the_development_key():
    key = hash_key_from_env(environ={})
    assert key.key == DEVELOPMENT_KEY and key.is_development
    assert key.label == "development key"
    assert keyed_hash("P1", key) == keyed_hash("P1", DEVELOPMENT_KEY)


def test_required_key_raises_a_clear_error_when_unset():
    with pytest.raises(HashKeyError, match=ENV_VAR):
        hash_key_from_env(required=True, environ={})


def test_key_from_the_environment_is_used_and_never_printed():
    secret = "s3cret-value-0123456789"
    key = hash_key_from_env(required=True, environ={ENV_VAR: secret})
    assert key.key == secret.encode() and not key.is_development
    assert key.label == f"key from {ENV_VAR}"
    assert secret not in repr(key)


def test_short_keys_are_refused():
    with pytest.raises(HashKeyError, match="at least 16"):
        hash_key_from_env(environ={ENV_VAR: "short"})
