"""HTTP transport shared by the forge client and the CI providers.

One place decides how we talk to a remote API: explicit connect/read timeouts, TLS always
verified (a custom CA by file, never a switch to turn checking off), bounded retries with
exponential backoff and jitter for idempotent requests only, and one-line errors that name
the endpoint, the status and the server's own message, and never the token. A 401 is
never "the forge is down": it says the forge refused the token and where that token came
from (TokenRefused, exit 2), so the operator fixes the variable or file, not the network.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import tenacity

from coordinator.errors import CoordinatorError, ForgeError, TokenRefused
from coordinator.tls import CaFileError, trust_context, untrusted_certificate

Params = Mapping[str, str | int | bool | list[str]]
Sleep = Callable[[float], None]
Clock = Callable[[], float]

#: Methods whose repetition cannot change the outcome; PATCH is opted in per call when
#: the body sets absolute state (closing an issue), POST never is.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Gateway answers that say "try again", for every retried request.
RETRYABLE_STATUSES = frozenset({502, 503, 504})
#: Methods that only read: a 500 on one of them is retried too (a passing fault of a busy
#: forge, which Gitea answers to a GET under load), since repeating a read can never do a
#: thing twice. A 500 on POST/PATCH/PUT/DELETE may follow a change that happened, so it
#: stays the server's final answer there.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUSES_SAFE_ONLY = frozenset({500})
#: Upper bound on any body we read into memory (artifact zips, manifests).
MAX_BODY_BYTES = 50 * 1024 * 1024
_MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up: both bounds apply, whichever comes first."""

    attempts: int = 4
    total_s: float = 30.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    jitter_s: float = 0.5


class RetryableStatus(Exception):
    """A 502/503/504 answer (or a 500 to a read), raised so that tenacity treats it like a
    transport failure."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def segment(value: str | int) -> str:
    """One path segment, percent-encoded so that a value can never add path levels."""
    return quote(str(value), safe="")


def origin(url: str) -> tuple[str, str]:
    """(scheme, host:port) of a URL: the unit that may receive our credentials."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """The shared trust store (coordinator/tls.py); a CA file that does not load is the forge's error."""
    try:
        return trust_context(ca_file)
    except CaFileError as exc:
        raise ForgeError(f"ca_file {exc}") from exc


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 1] + "…"


def server_message(response: httpx.Response) -> str:
    """The server's own explanation: Gitea/GitHub `message`, else the start of the body."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        for key in ("message", "error", "errors"):
            if data.get(key):
                return _one_line(str(data[key]))
    try:
        text = response.text
    except UnicodeDecodeError:
        return ""
    return _one_line(text) if text and not text.lstrip().startswith("<") else ""


class HttpSession:
    """A configured httpx client for one API root (`base_url`) and one credential.

    The credential is set once as a default header (httpx masks it in reprs) and goes into
    no URL; it is kept besides only to scrub it from every error message, in case a server
    or proxy echoes it back.
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        auth_header: str | None,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        token_source: str | None = None,
        ca_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ForgeError(f"{service} URL {base_url!r} must start with https:// (or http:// for a local test server)")
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._secret = auth_header.split(" ", 1)[-1] if auth_header else ""
        self.token_source = token_source or "the configured token"
        headers = {"Accept": "application/json", "User-Agent": "coordinator"}
        headers.update(extra_headers or {})
        if auth_header:
            headers["Authorization"] = auth_header
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout or min(timeout, 10.0)),
            verify=_ssl_context(ca_file),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"HttpSession(service={self.service!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    # -- errors -------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Remove the credential from any text we are about to show."""
        return text.replace(self._secret, "***") if self._secret else text

    def endpoint(self, method: str, url: str) -> str:
        """`GET /api/v1/repos/…` without query string: what error messages name."""
        absolute = self._url(url)
        path = urlsplit(absolute).path
        if origin(absolute) != origin(self.base_url):
            path = f"{urlsplit(absolute).netloc}{path}"
        return f"{method} {path}"

    def status_error(self, method: str, url: str, response: httpx.Response, hint: str = "") -> CoordinatorError:
        """The error for an answer we did not want: TokenRefused for a 401 to our token,
        else a ForgeError naming the endpoint, status and the server's message."""
        endpoint = self.endpoint(method, str(response.request.url) if response.request else url)
        if response.status_code == 401 and response.request is not None and "Authorization" in response.request.headers:
            return TokenRefused(
                f"{self.service} refused the token from {self.token_source} (HTTP 401 on {endpoint}): it is wrong, "
                f"expired or revoked; put a valid API token there and run the command again"
            )
        message = server_message(response)
        text = f"{self.service} {endpoint} answered HTTP {response.status_code}"
        if message:
            text += f": {message}"
        if hint:
            text += f" ({hint})"
        return ForgeError(self.scrub(text), endpoint=endpoint, status=response.status_code)

    def transport_error(self, method: str, url: str, exc: Exception, attempts: int) -> ForgeError:
        endpoint = self.endpoint(method, url)
        if (reason := untrusted_certificate(exc)) is not None:  # not "unreachable": waiting will not fix it
            return ForgeError(self.scrub(
                f"{self.service} {endpoint}: its TLS certificate is not trusted ({reason}): add its CA to the system "
                "trust store or name it in forge.ca_file (ci.ca_file for a CI elsewhere)"), endpoint=endpoint, status=None)
        kind = type(exc).__name__
        detail = str(exc).strip()
        text = f"{self.service} {endpoint} unreachable after {attempts} attempt(s): {kind}"
        if detail:
            text += f" ({_one_line(detail)})"
        return ForgeError(self.scrub(text), endpoint=endpoint, status=None)

    # -- sending ------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    def send_once(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        follow_redirects: bool = False,
        send_auth: bool = True,
    ) -> httpx.Response:
        """One attempt. Raises httpx.TransportError or RetryableStatus; returns any other answer."""
        request = self._client.build_request(method, self._url(path), params=params, json=json_body)
        if not send_auth:
            request.headers.pop("Authorization", None)
        response = self._client.send(request, follow_redirects=follow_redirects, stream=True)
        try:
            _read_bounded(response)
        finally:
            response.close()
        if response.status_code in RETRYABLE_STATUSES or (
            response.status_code in RETRYABLE_STATUSES_SAFE_ONLY and method.upper() in SAFE_METHODS
        ):
            raise RetryableStatus(response)
        return response

    def retrying(self) -> tenacity.Retrying:
        """A bounded tenacity loop: attempts and total time (sleeps included) both cap it."""
        policy = self.retry
        started = self._clock()

        def stop(state: tenacity.RetryCallState) -> bool:
            spent = self._clock() - started + state.upcoming_sleep
            return state.attempt_number >= policy.attempts or spent > policy.total_s

        return tenacity.Retrying(
            # A certificate the trust store refuses is refused again: only network faults are retried.
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, RetryableStatus)
                or (isinstance(exc, httpx.TransportError) and untrusted_certificate(exc) is None)),
            wait=tenacity.wait_exponential(multiplier=policy.initial_backoff_s, max=policy.max_backoff_s)
            + tenacity.wait_random(0, policy.jitter_s),
            stop=stop,
            sleep=self._sleep,
            reraise=True,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        ok: tuple[int, ...] = (200,),
        idempotent: bool | None = None,
        follow_redirects: bool = False,
        send_auth: bool = True,
        hint: str = "",
    ) -> httpx.Response:
        """Send with retries when safe; return a response whose status is in `ok`.

        Anything else becomes a ForgeError naming the endpoint, status and message.
        """
        retry = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = 0
        try:
            if not retry:
                attempts = 1
                response = self.send_once(method, path, params=params, json_body=json_body,
                                          follow_redirects=follow_redirects, send_auth=send_auth)
            else:
                for attempt in self.retrying():
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        response = self.send_once(method, path, params=params, json_body=json_body,
                                                  follow_redirects=follow_redirects, send_auth=send_auth)
        except RetryableStatus as exc:
            raise self.status_error(method, path, exc.response, hint) from None
        except httpx.TransportError as exc:
            raise self.transport_error(method, path, exc, attempts) from None
        if response.status_code not in ok:
            raise self.status_error(method, path, response, hint)
        return response

    def get_json(self, path: str, *, params: Params | None = None, ok: tuple[int, ...] = (200,)) -> Any:
        response = self.request("GET", path, params=params, ok=ok)
        return decode_json(self, "GET", path, response)

    def paginate(
        self,
        path: str,
        *,
        params: Params | None = None,
        items_key: str | None = None,
        page_param: str = "page",
        limit_param: str = "limit",
        limit: int = 50,
        max_pages: int = 200,
    ) -> Iterator[Any]:
        """Every item of a paged list, page by page (1-based).

        Stops when `X-Total-Count` items have been seen, or, without that header, on a
        short page; both because Gitea caps `limit` silently and `/tags` sends no `Link`.
        """
        seen = 0
        for page in range(1, max_pages + 1):
            query: dict[str, Any] = dict(params or {})
            query[page_param] = page
            query[limit_param] = limit
            response = self.request("GET", path, params=query)
            data = decode_json(self, "GET", path, response)
            items = data.get(items_key) if items_key and isinstance(data, dict) else data
            if items is None:
                items = []
            if not isinstance(items, list):
                raise ForgeError(
                    f"{self.service} GET {path} answered an unexpected shape (expected a list): is this the right API URL?",
                    endpoint=f"GET {path}", status=response.status_code,
                )
            yield from items
            seen += len(items)
            total = _total_count(response, data)
            if not items:
                return
            if total is not None:
                if seen >= total:
                    return
            elif len(items) < limit:
                return
        raise ForgeError(f"{self.service} GET {path} has more than {max_pages} pages: narrow the query",
                         endpoint=f"GET {path}")


def _total_count(response: httpx.Response, data: Any) -> int | None:
    """The list's full length: `X-Total-Count`, or `total_count` in an object body."""
    header = response.headers.get("X-Total-Count")
    if header is not None and header.strip().isdigit():
        return int(header)
    if isinstance(data, dict) and isinstance(data.get("total_count"), int):
        return int(data["total_count"])
    return None


def _read_bounded(response: httpx.Response) -> None:
    """Read the body, refusing one that announces an absurd size (artifact zips, manifests)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        path = response.request.url.path
        raise ForgeError(
            f"{response.request.method} {path} would send {int(declared) // 1024 // 1024} MB: refusing more than "
            f"{MAX_BODY_BYTES // 1024 // 1024} MB",
            endpoint=f"{response.request.method} {path}", status=response.status_code,
        )
    response.read()


def decode_json(session: HttpSession, method: str, path: str, response: httpx.Response) -> Any:
    """The body as JSON, or a ForgeError that says the server sent something else."""
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        endpoint = session.endpoint(method, path)
        raise ForgeError(
            f"{session.service} {endpoint} answered HTTP {response.status_code} with a body that is not JSON: "
            "is the URL the API root?",
            endpoint=endpoint, status=response.status_code,
        ) from None


_TOKENISH = re.compile(r"\s")


def check_token(token: str, *, service: str) -> str:
    """A token must be one printable word: it goes into a header, never anywhere else."""
    token = token.strip()
    if not token or _TOKENISH.search(token) or not token.isprintable():
        raise ForgeError(f"{service} token is empty or contains whitespace: check the token file or variable")
    return token
