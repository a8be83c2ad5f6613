"""Every message that names a store shows its URL through one rule: the password and credential parameters go."""

from __future__ import annotations

import pytest

from exchange.errors import StoreConfigError
from exchange.objects import open_object_store
from exchange.urls import redacted_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mqtt://hub:S3cretPw@broker.example:1883", "mqtt://hub:***@broker.example:1883"),
        ("postgresql+psycopg://hub:p%40ss@db:5432/hub", "postgresql+psycopg://hub:***@db:5432/hub"),
        ("postgresql://hub:p@ss/w?rd#x@db/hub", "postgresql://hub:***@db/hub"),  # unencoded: hide more, never less
        ("mqtt://hub:@broker", "mqtt://hub:***@broker"),
        (
            "s3://bucket/objects?region=cn-south-1&secret_key=AbC%2Fd",
            "s3://bucket/objects?region=cn-south-1&secret_key=***",
        ),
        (
            "https://store/x?X-Amz-Signature=f00&X-Amz-Credential=AKIA",
            "https://store/x?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        (
            "postgresql://db/hub?password=hunter2&options=-csearch_path%3Dt",
            "postgresql://db/hub?password=***&options=-csearch_path%3Dt",
        ),
    ],
)
def test_a_url_is_shown_without_its_password_or_credential_parameters(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://127.0.0.1:1883",
        "mqtt://hub@broker:1883",  # a user name alone is not a secret
        "file:///srv/hub/objects",
        "sqlite:////srv/hub/waterhub.db",
        "https://example.gov.cn/people/a@b?page=2",  # an "@" in the path is not userinfo
    ],
)
def test_a_url_without_secrets_is_shown_as_it_is(url: str) -> None:
    assert redacted_url(url) == url


def test_text_that_is_not_a_url_but_could_hold_userinfo_is_hidden() -> None:
    assert redacted_url("hub:S3cretPw@broker") == "***"


def test_an_object_store_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(
        ValueError, match=r"unsupported object store URL scheme 'gs' in gs://AKIA:\*\*\*@bucket/hub"
    ) as gs:
        open_object_store("gs://AKIA:Wj4-store-secret@bucket/hub")
    with pytest.raises(StoreConfigError, match=r"s3://bucket/hub: put the object store's keys in settings") as s3:
        open_object_store("s3://AKIA:Wj4-store-secret@bucket/hub")
    assert "Wj4-store-secret" not in str(gs.value) + str(s3.value)
