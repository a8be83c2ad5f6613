"""OAuth 2.0 client credentials refreshed mid-run, and connector errors that carry status, stream, attempts and
the setting to check as attributes, against a small simulator over a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from connectors.errors import SourceConfigError, SourceDataError, SourceUnavailableError
from connectors.http import OAuth2ClientCredentials
from connectors.http.settings import HttpClientSettings
from tests.connectors.paging_app import CLIENT_SECRET, PROBLEMS, OAuthPagingSimulator, OAuthPagingSource

HTTP = HttpClientSettings(timeout_s=2, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)


class Clock:
    """A monotonic clock the test moves by hand, so token expiry needs no real waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def oauth(secret: str = CLIENT_SECRET, clock: Clock | None = None) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials("/oauth/token", "city-hub", SecretStr(secret), clock=clock or Clock())


@pytest.fixture
def served() -> Iterator[tuple[OAuthPagingSimulator, str]]:
    simulator = OAuthPagingSimulator(revoke_after=2)
    with simulator.served() as server:
        yield simulator, server.base_url


def test_a_token_revoked_mid_run_is_fetched_again_and_the_request_repeated(
    served: tuple[OAuthPagingSimulator, str],
) -> None:
    simulator, base_url = served
    auth = oauth()
    source = OAuthPagingSource(base_url, HTTP, auth)
    with source.connect() as session:
        records = list(session.read(source.stream("problems")))
    assert records == PROBLEMS
    assert simulator.issued == ["tok-1", "tok-2"]
    data_requests = [entry for entry in simulator.requests if entry.method == "GET"]  # token POSTs are logged too
    assert [entry.status for entry in data_requests] == [200, 200, 401, 200]
    assert simulator.token_requests[0] == {"grant_type": "client_credentials", "client_id": "city-hub"}


def test_a_token_is_fetched_again_before_it_expires() -> None:
    simulator = OAuthPagingSimulator(expires_in=120)
    clock = Clock()
    with simulator.served() as server:
        source = OAuthPagingSource(server.base_url, HTTP, oauth(clock=clock))
        with source.connect() as session:
            pages = session.read(source.stream("problems"))
            first = [next(pages), next(pages)]  # page 1 with tok-1
            clock.now += 100  # within the 30 s leeway of expiry
            rest = list(pages)
    assert first + rest == PROBLEMS
    assert simulator.issued == ["tok-1", "tok-2"]
    assert [e.status for e in simulator.requests if e.method == "GET"] == [200, 200, 200]  # never a 401


def test_refused_client_credentials_name_the_sources_own_secret_setting() -> None:
    simulator = OAuthPagingSimulator()
    with simulator.served() as server:
        source = OAuthPagingSource(server.base_url, HTTP, oauth(secret="wrong-secret"))
        with source.connect() as session, pytest.raises(SourceConfigError) as refused:
            list(session.read(source.stream("problems")))
    error = refused.value
    assert (error.stream, error.status, error.setting) == ("province/problems", 401, "WATERHUB_PROVINCE__CLIENT_SECRET")
    assert "wrong-secret" not in str(error)
    assert "API_KEY" not in str(error)


def test_a_refused_page_token_is_a_data_error_not_a_settings_hint() -> None:
    simulator = OAuthPagingSimulator(expired_cursor="t2")
    with simulator.served() as server:
        source = OAuthPagingSource(server.base_url, HTTP, oauth())
        with source.connect() as session, pytest.raises(SourceDataError) as refused:
            list(session.read(source.stream("problems")))
    error = refused.value
    assert (error.stream, error.status, error.attempts, error.setting) == ("province/problems", 400, 1, None)
    assert "cursor" in str(error)
    assert "check" not in str(error).lower()


def test_a_missing_path_names_the_address_setting_the_source_has() -> None:
    simulator = OAuthPagingSimulator()
    with simulator.served() as server:
        source = OAuthPagingSource(server.base_url + "/v9", HTTP, oauth())
        with source.connect() as session, pytest.raises(SourceConfigError) as refused:
            list(session.read(source.stream("problems")))
    assert (refused.value.status, refused.value.setting) == (404, "WATERHUB_PROVINCE__API_URL")
    assert "BASE_URL" not in str(refused.value)


def test_exhausted_retries_carry_the_attempts_and_last_status() -> None:
    simulator = OAuthPagingSimulator()
    simulator.faults.server_error(times=5)
    with simulator.served() as server:
        source = OAuthPagingSource(server.base_url, HTTP, oauth())
        with source.connect() as session, pytest.raises(SourceUnavailableError) as failed:
            list(session.read(source.stream("problems")))
    assert (failed.value.stream, failed.value.status, failed.value.attempts) == ("province/problems", 500, 2)
