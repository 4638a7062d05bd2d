"""Admin users: argon2 hashes, sign-in checks, password rules."""

from __future__ import annotations

import pytest
from argon2 import Type

from rapport.platform import service as platform
from rapport.platform.errors import Conflict, InvalidInput
from tests.conftest import PRODUCT_PASSWORD_HASHER


def test_admin_password_is_stored_as_argon2id_hash(db) -> None:
    user = platform.create_admin_user(db, email="Ops@Example.com", password="correct horse battery")
    assert user.email == "ops@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse battery" not in user.password_hash


def test_the_product_hashes_passwords_at_owasp_s_argon2id_cost_or_more() -> None:
    # the product's own hasher (the suite's process hashes cheaper: tests/conftest.py)
    assert PRODUCT_PASSWORD_HASHER.type is Type.ID
    # OWASP's least for argon2id: 19 MiB of memory and two passes
    assert PRODUCT_PASSWORD_HASHER.memory_cost >= 19 * 1024
    assert PRODUCT_PASSWORD_HASHER.time_cost >= 2


def test_admin_sign_in_accepts_right_password_only(db) -> None:
    platform.create_admin_user(db, email="ops@example.com", password="correct horse battery")
    assert (
        platform.authenticate_admin(db, email="ops@example.com", password="wrong password!") is None
    )
    assert (
        platform.authenticate_admin(db, email="nobody@example.com", password="whatever123456")
        is None
    )
    user = platform.authenticate_admin(
        db, email=" OPS@example.com ", password="correct horse battery"
    )
    assert user is not None
    assert user.last_login_at is not None


def test_short_password_is_refused(db) -> None:
    with pytest.raises(InvalidInput) as error:
        platform.create_admin_user(db, email="ops@example.com", password="short")
    assert error.value.field == "password"
    assert platform.count_admin_users(db) == 0


def test_duplicate_admin_email_is_a_conflict(db) -> None:
    platform.create_admin_user(db, email="ops@example.com", password="correct horse battery")
    with pytest.raises(Conflict):
        platform.create_admin_user(db, email="OPS@example.com", password="another long password")
    assert platform.count_admin_users(db) == 1


def test_set_password_replaces_the_old_one(db) -> None:
    platform.create_admin_user(db, email="ops@example.com", password="correct horse battery")
    platform.set_admin_password(db, email="ops@example.com", password="a brand new passphrase")
    assert (
        platform.authenticate_admin(db, email="ops@example.com", password="correct horse battery")
        is None
    )
    assert (
        platform.authenticate_admin(db, email="ops@example.com", password="a brand new passphrase")
        is not None
    )


def test_key_needs_a_scope(db) -> None:
    with pytest.raises(InvalidInput) as error:
        platform.create_api_key(db, name="empty", scopes=[])
    assert error.value.field == "scopes"
    assert platform.list_api_keys(db) == []


def test_revoked_keys_are_listed_only_on_request(db) -> None:
    kept = platform.create_api_key(db, name="kept", scopes=[platform.Scope.READ])
    gone = platform.create_api_key(db, name="gone", scopes=[platform.Scope.READ])
    platform.revoke_api_key(db, key_id=gone.key.id)
    assert [k.name for k in platform.list_api_keys(db)] == ["kept"]
    assert sorted(k.name for k in platform.list_api_keys(db, include_revoked=True)) == [
        "gone",
        "kept",
    ]
    assert kept.key.revoked_at is None
