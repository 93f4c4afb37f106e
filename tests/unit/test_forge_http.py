"""Transport behaviour of the forge client: retries, timeouts, pagination, errors, secrets."""

from __future__ import annotations

import httpx
import pytest

from coordinator.errors import CoordinatorError, ExitCode, ForgeError, TokenRefused
from coordinator.forge import GiteaClient, RetryPolicy
from tests.scripted_api import ScriptedAPI, reply
from tests.unit.fakes import FakeClock

TOKEN = "s3cr3t-token-value"
REPO = "/api/v1/repos/acme/sample"
TAG_PATH = f"{REPO}/tags/v1.0.0"
TAG = {"name": "v1.0.0", "id": "a" * 40, "commit": {"sha": "b" * 40}}



@pytest.fixture
def api() -> ScriptedAPI:
    return ScriptedAPI()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(api: ScriptedAPI, clock: FakeClock) -> GiteaClient:
    return GiteaClient("https://forge.test", "acme", "sample", TOKEN, transport=api.transport(),
                       sleep=clock.sleep, clock=clock)


def test_token_is_sent_only_in_the_authorization_header(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", TAG_PATH, reply(200, TAG))
    client.get_tag("v1.0.0")
    call = api.calls[0]
    assert call.headers["Authorization"] == f"token {TOKEN}"
    assert TOKEN not in call.url


def test_base_url_may_be_given_with_or_without_the_api_prefix(api: ScriptedAPI) -> None:
    api.on("GET", TAG_PATH, reply(200, TAG))
    for base in ("https://forge.test/", "https://forge.test/api/v1"):
        GiteaClient(base, "acme", "sample", TOKEN, transport=api.transport()).get_tag("v1.0.0")
    assert [call.path for call in api.calls] == [TAG_PATH, TAG_PATH]


def test_every_request_has_explicit_connect_and_read_timeouts(api: ScriptedAPI) -> None:
    seen: list[dict[str, float | None]] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return reply(200, TAG)

    api.on("GET", TAG_PATH, capture)
    GiteaClient("https://forge.test", "acme", "sample", TOKEN, timeout=7.0, transport=api.transport()).get_tag("v1.0.0")
    assert seen[0]["read"] == 7.0
    assert seen[0]["connect"] == 7.0


def test_repr_never_shows_the_token(client: GiteaClient) -> None:
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(client.http)


def test_a_503_is_retried_with_backoff_then_succeeds(api: ScriptedAPI, client: GiteaClient, clock: FakeClock) -> None:
    api.on("GET", TAG_PATH, reply(503), reply(503), reply(200, TAG))
    tag = client.get_tag("v1.0.0")
    assert tag is not None and tag.commit_sha == "b" * 40
    assert api.served("GET", TAG_PATH) == 3
    assert len(clock.sleeps) == 2
    assert clock.sleeps[1] > clock.sleeps[0] * 1.0 - 0.5  # exponential, with jitter


def test_connection_errors_and_timeouts_are_retried(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", TAG_PATH, httpx.ConnectError("refused"), httpx.ReadTimeout("timed out"), reply(200, TAG))
    assert client.get_tag("v1.0.0") is not None
    assert api.served("GET", TAG_PATH) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422])
def test_other_statuses_are_never_retried(api: ScriptedAPI, client: GiteaClient, status: int) -> None:
    api.on("GET", f"{REPO}/commits/abc/status", reply(status, {"message": "nope", "url": "x"}))
    with pytest.raises(CoordinatorError):
        client.combined_status("abc")
    assert api.served("GET", f"{REPO}/commits/abc/status") == 1


def test_a_500_to_a_get_is_retried_with_the_same_backoff_then_succeeds(
    api: ScriptedAPI, client: GiteaClient, clock: FakeClock
) -> None:
    status = {"state": "success", "total_count": 1, "statuses": [{"context": "ci", "status": "success"}]}
    api.on("GET", f"{REPO}/commits/abc/status", reply(500, {"message": "busy"}), reply(500, {"message": "busy"}),
           reply(200, status))
    assert client.combined_status("abc").is_success
    assert api.served("GET", f"{REPO}/commits/abc/status") == 3
    assert len(clock.sleeps) == 2 and clock.sleeps[1] > clock.sleeps[0] - 0.5


def test_a_500_to_a_get_is_retried_only_up_to_the_attempt_bound(api: ScriptedAPI, clock: FakeClock) -> None:
    api.on("GET", TAG_PATH, reply(500, {"message": "internal error"}))
    client = GiteaClient("https://forge.test", "acme", "sample", TOKEN, transport=api.transport(),
                         retry=RetryPolicy(attempts=3, total_s=999), sleep=clock.sleep, clock=clock)
    with pytest.raises(ForgeError, match="answered HTTP 500: internal error") as caught:
        client.get_tag("v1.0.0")
    assert api.served("GET", TAG_PATH) == 3
    assert caught.value.status == 500


def test_a_500_to_a_patch_or_post_is_the_final_answer(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("PATCH", f"{REPO}/issues/3", reply(500, {"message": "boom"}))
    api.on("POST", f"{REPO}/releases", reply(500, {"message": "boom"}))
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(404, {"message": "nope"}))
    with pytest.raises(ForgeError, match="HTTP 500"):
        client.close_issue(3)
    with pytest.raises(ForgeError, match="HTTP 500"):
        client.create_release("v1.0.0", "v1.0.0", "notes", "main")
    assert api.served("PATCH", f"{REPO}/issues/3") == 1
    assert api.served("POST", f"{REPO}/releases") == 1


def test_a_401_says_the_forge_refused_the_token_and_where_it_came_from(api: ScriptedAPI, clock: FakeClock) -> None:
    api.on("GET", f"{REPO}/commits/abc/status", reply(401, {"message": f"token is required {TOKEN}", "url": "u"}))
    client = GiteaClient("https://forge.test", "acme", "sample", TOKEN, transport=api.transport(),
                         sleep=clock.sleep, clock=clock, token_source="environment variable COORDINATOR_FORGE_TOKEN")
    with pytest.raises(TokenRefused) as caught:
        client.combined_status("abc")
    message = caught.value.message
    assert message.startswith("forge refused the token from environment variable COORDINATOR_FORGE_TOKEN (HTTP 401")
    assert TOKEN not in message and "\n" not in message
    assert caught.value.exit_code == ExitCode.USAGE
    assert not isinstance(caught.value, ForgeError)  # not "forge unreachable, resume later"
    assert api.served("GET", f"{REPO}/commits/abc/status") == 1


def test_retries_stop_after_the_attempt_bound(api: ScriptedAPI, clock: FakeClock) -> None:
    api.on("GET", TAG_PATH, reply(502))
    client = GiteaClient("https://forge.test", "acme", "sample", TOKEN, transport=api.transport(),
                         retry=RetryPolicy(attempts=3, total_s=999), sleep=clock.sleep, clock=clock)
    with pytest.raises(ForgeError) as caught:
        client.get_tag("v1.0.0")
    assert api.served("GET", TAG_PATH) == 3
    assert caught.value.status == 502


def test_retries_stop_at_the_total_time_bound(api: ScriptedAPI, clock: FakeClock) -> None:
    api.on("GET", TAG_PATH, httpx.ConnectTimeout("slow"))
    policy = RetryPolicy(attempts=100, total_s=5.0, initial_backoff_s=1.0, max_backoff_s=2.0, jitter_s=0.0)
    client = GiteaClient("https://forge.test", "acme", "sample", TOKEN, transport=api.transport(),
                         retry=policy, sleep=clock.sleep, clock=clock)
    with pytest.raises(ForgeError, match="unreachable after"):
        client.get_tag("v1.0.0")
    assert clock.now <= 5.0
    assert api.served("GET", TAG_PATH) < 100


def test_transport_failure_is_a_forge_error_without_status(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", TAG_PATH, httpx.ConnectError("connection refused"))
    with pytest.raises(ForgeError) as caught:
        client.get_tag("v1.0.0")
    assert caught.value.status is None
    assert caught.value.endpoint == f"GET {TAG_PATH}"
    assert "ConnectError" in caught.value.message


def test_errors_name_endpoint_status_and_gitea_message(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/commits/abc/status", reply(403, {"message": "token does not have scope read:repository", "url": "u"}))
    with pytest.raises(ForgeError) as caught:
        client.combined_status("abc")
    message = caught.value.message
    assert f"GET {REPO}/commits/abc/status" in message
    assert "403" in message
    assert "token does not have scope read:repository" in message
    assert "\n" not in message
    assert caught.value.status == 403


def test_token_never_appears_in_error_text(api: ScriptedAPI, client: GiteaClient) -> None:
    # Even a server that echoes the credential back cannot make us print it.
    api.on("GET", f"{REPO}/commits/abc/status", reply(401, {"message": f"bad token {TOKEN}", "url": "u"}))
    api.on("GET", TAG_PATH, httpx.ConnectError(f"proxy said {TOKEN}"))
    for action in (lambda: client.combined_status("abc"), lambda: client.get_tag("v1.0.0")):
        with pytest.raises(CoordinatorError) as caught:
            action()
        assert TOKEN not in str(caught.value)
        assert TOKEN not in getattr(caught.value, "endpoint", "")


def test_pagination_reads_every_page_until_a_short_one(api: ScriptedAPI, client: GiteaClient) -> None:
    labels = [{"id": i, "name": f"label-{i}"} for i in range(120)]

    def page(request: httpx.Request) -> httpx.Response:
        number, limit = int(request.url.params["page"]), int(request.url.params["limit"])
        return reply(200, labels[(number - 1) * limit: number * limit])

    api.on("GET", f"{REPO}/labels", page)
    assert client.label_exists("label-119")
    assert [call.query["page"] for call in api.calls] == ["1", "2", "3"]
    assert {call.query["limit"] for call in api.calls} == {"50"}


def test_pagination_trusts_x_total_count_over_a_short_page(api: ScriptedAPI, client: GiteaClient) -> None:
    # A server whose MAX_RESPONSE_ITEMS is below our limit answers short pages that are not the last.
    labels = [{"id": i, "name": f"label-{i}"} for i in range(45)]

    def page(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        return reply(200, labels[(number - 1) * 20: number * 20], headers={"X-Total-Count": "45"})

    api.on("GET", f"{REPO}/labels", page)
    assert [label.name for label in client.labels()] == [f"label-{i}" for i in range(45)]
    assert api.served("GET", f"{REPO}/labels") == 3


def test_an_empty_page_ends_pagination(api: ScriptedAPI, client: GiteaClient) -> None:
    api.on("GET", f"{REPO}/labels", reply(200, [], headers={"X-Total-Count": "70"}))
    assert client.labels() == []
    assert api.served("GET", f"{REPO}/labels") == 1


def test_a_custom_ca_file_that_does_not_load_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ForgeError, match="ca_file"):
        GiteaClient("https://forge.test", "acme", "sample", TOKEN, ca_file=bad)
    # The contexts are kept for the process, a refusal is not: the second client is refused too.
    with pytest.raises(ForgeError, match="ca_file"):
        GiteaClient("https://forge.test", "acme", "sample", TOKEN, ca_file=bad)


def test_the_forge_and_ci_clients_of_one_process_share_one_tls_context() -> None:
    """Loading the trust store costs about 50 ms; a release command makes several clients."""
    from coordinator.forge._http import _ssl_context

    assert _ssl_context(None) is _ssl_context(None)


def test_a_url_without_http_scheme_is_refused() -> None:
    with pytest.raises(ForgeError, match="must start with https://"):
        GiteaClient("forge.test", "acme", "sample", TOKEN)


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ForgeError, match="token is empty"):
        GiteaClient("https://forge.test", "acme", "sample", "  ")


def test_a_forge_certificate_the_trust_store_refuses_is_named_once_not_retried_as_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A real TLS server whose CA nobody installed: one handshake, and the cause in the message."""
    from tests.sandbox.tls_front import PrivateCa, TlsFront

    ca = PrivateCa.make(tmp_path / "ca", ["forge.test"])
    with TlsFront("127.0.0.1:9", ca) as front:  # the handshake fails before anything is passed on
        client = GiteaClient(f"https://127.0.0.1:{front.port}", "acme", "sample", TOKEN, sleep=lambda _s: None)
        with pytest.raises(ForgeError) as refused:
            client.labels()

    assert str(refused.value) == (
        "forge GET /api/v1/repos/acme/sample/labels: its TLS certificate is not trusted (unable to get local issuer "
        "certificate): add its CA to the system trust store or name it in forge.ca_file (ci.ca_file for a CI elsewhere)")
    assert front.refused == 1
