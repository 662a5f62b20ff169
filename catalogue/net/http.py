"""`HttpClient`: the one place harvest HTTP goes through.

Every request gets the catalogue's User-Agent, a timeout, a polite limit of requests at once per
host, retries with exponential backoff and jitter (connection errors, timeouts, 408, 429 and 5xx;
Retry-After is honoured up to a cap), and a response size cap enforced while the body streams.
Whatever still fails is an `UnreadableSourceError` naming the URL.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata

import httpx
from pydantic import BaseModel, Field, SecretStr

from catalogue import __version__
from catalogue.exceptions import UnreadableSourceError

log = logging.getLogger(__name__)

_NOT_TRANSIENT = frozenset({501, 505})
"""5xx answers that another attempt will not change."""
_ERROR_EXCERPT = 200
"""Characters of an error answer's body quoted in the error."""

FormData = Mapping[str, str | Sequence[str]]


def _package_homepage() -> str | None:
    try:
        meta = metadata.metadata("cancer-imaging-catalogue")
    except metadata.PackageNotFoundError:
        return None
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = str(entry).partition(",")
        if label.strip().lower() in ("homepage", "home", "repository", "source"):
            return url.strip()
    pages = meta.get_all("Home-page") or []
    return str(pages[0]) if pages else None


def headers_field() -> dict[str, SecretStr]:
    """The `headers` option of every HTTP source (a fresh Field per model)."""
    return Field(
        default_factory=dict,
        description="Extra request headers, such as Authorization; kept out of logs and reprs.",
    )


def plain_headers(headers: Mapping[str, SecretStr]) -> dict[str, str]:
    """A source's `headers` as sent."""
    return {name: value.get_secret_value() for name, value in headers.items()}


class HttpSettings(BaseModel):
    """How harvests talk HTTP (CATALOGUE_HTTP__<FIELD>)."""

    timeout: float = Field(
        default=30.0, gt=0, description="Seconds to connect, and to wait for each read."
    )
    retries: int = Field(
        default=3,
        ge=0,
        description="Further attempts after a connection error, a timeout, 408, 429 or 5xx.",
    )
    backoff: float = Field(
        default=0.5, ge=0, description="First pause in seconds; doubled at each attempt."
    )
    max_backoff: float = Field(
        default=60.0, ge=0, description="Longest pause between attempts, Retry-After included."
    )
    max_bytes: int = Field(default=256 << 20, ge=1, description="Largest response body read.")
    per_host: int = Field(default=4, ge=1, description="Requests at once to one host.")
    homepage: str | None = Field(
        default_factory=_package_homepage,
        description="Where site operators learn about this harvester, in the User-Agent.",
    )
    user_agent: str | None = Field(
        default=None, description="The whole User-Agent; built from version and homepage if unset."
    )

    def agent(self) -> str:
        """The User-Agent header: `cancer-imaging-catalogue/<version> (+<homepage>)`."""
        if self.user_agent:
            return self.user_agent
        suffix = f" (+{self.homepage})" if self.homepage else ""
        return f"cancer-imaging-catalogue/{__version__}{suffix}"


@dataclass(frozen=True)
class Fetched:
    """A successful answer: its final URL (after redirects), status, media type and body."""

    url: str
    status: int
    content_type: str
    """Lower-case media type without parameters; "" when the server sent none."""
    body: bytes


class HttpClient:
    """Wraps one `httpx.Client`, shared by every source of a harvest run; thread-safe."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or HttpSettings()
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=True,
            timeout=httpx.Timeout(self.settings.timeout),
        )
        self._sleep = sleep
        self._random = random.Random()  # noqa: S311 (jitter, not security)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        accept: str | None = None,
        params: FormData | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """GET a URL; raise UnreadableSourceError when it cannot be read."""
        return self._request("GET", url, accept=accept, params=params, headers=headers)

    def post_form(
        self,
        url: str,
        data: FormData,
        *,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """POST an application/x-www-form-urlencoded body (a list value repeats its key)."""
        return self._request("POST", url, accept=accept, data=data, headers=headers)

    def _request(
        self,
        method: str,
        url: str,
        *,
        accept: str | None,
        headers: Mapping[str, str] | None,
        params: FormData | None = None,
        data: FormData | None = None,
    ) -> Fetched:
        try:
            target = httpx.URL(url)
            if params:  # merged into the URL's own query (URL(params=None) would drop it)
                target = target.copy_merge_params(dict(params))
        except (httpx.InvalidURL, TypeError) as exc:
            raise UnreadableSourceError(f"{url}: not a valid URL: {exc}") from exc
        if target.scheme not in ("http", "https") or not target.host:
            raise UnreadableSourceError(f"{url}: only http and https URLs can be harvested")
        shown = str(target)
        sent = {"User-Agent": self.settings.agent(), **(headers or {})}
        if accept:
            sent["Accept"] = accept
        retries = self.settings.retries
        for attempt in range(retries + 1):
            last = attempt == retries
            tried = f" after {attempt + 1} attempts" if attempt else ""
            pause: float
            try:
                with (
                    self._slot(target),
                    self._client.stream(
                        method,
                        target,
                        headers=sent,
                        data=dict(data) if data is not None else None,
                    ) as response,
                ):
                    status = response.status_code
                    if 200 <= status < 300:
                        body = read_capped(shown, response, self.settings.max_bytes)
                        media = response.headers.get("Content-Type", "")
                        media = media.split(";", 1)[0].strip().lower()
                        return Fetched(str(response.url), status, media, body)
                    if not _transient(status) or last:
                        raise UnreadableSourceError(
                            f"{shown}: HTTP {status} {response.reason_phrase}{tried}"
                            f"{_excerpt(response)}"
                        )
                    pause = self._pause(attempt, response.headers.get("Retry-After"))
                    log.info("%s: HTTP %s; trying again in %.1fs", shown, status, pause)
            except httpx.TimeoutException as exc:
                if last:
                    raise UnreadableSourceError(
                        f"{shown}: no answer within {self.settings.timeout:g}s{tried} "
                        f"({type(exc).__name__})"
                    ) from exc
                pause = self._pause(attempt, None)
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if last:
                    raise UnreadableSourceError(
                        f"{shown}: cannot connect or read{tried}: {exc or type(exc).__name__}"
                    ) from exc
                pause = self._pause(attempt, None)
            except httpx.HTTPError as exc:  # too many redirects, unsupported protocol...
                raise UnreadableSourceError(f"{shown}: request failed: {exc!r}") from exc
            self._sleep(pause)
        raise AssertionError("unreachable")

    @contextmanager
    def _slot(self, url: httpx.URL) -> Iterator[None]:
        """Hold one of the host's `per_host` request slots."""
        key = f"{url.host}:{url.port or ''}"
        with self._lock:
            semaphore = self._hosts.get(key)
            if semaphore is None:
                semaphore = self._hosts[key] = threading.BoundedSemaphore(self.settings.per_host)
        with semaphore:
            yield

    def _pause(self, attempt: int, retry_after: str | None) -> float:
        """Exponential backoff with jitter, or the server's Retry-After; both capped."""
        cap = self.settings.max_backoff
        asked = _retry_after_seconds(retry_after)
        if asked is not None:
            return min(cap, asked)
        base = min(cap, self.settings.backoff * 2.0**attempt)
        return base * self._random.uniform(0.5, 1.0)


def read_capped(url: str, response: httpx.Response, cap: int) -> bytes:
    """A streamed response's body, refused past `cap` bytes (declared or while reading)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise UnreadableSourceError(
            f"{url}: response of {declared} bytes exceeds the size cap of {cap} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise UnreadableSourceError(
                f"{url}: response exceeds the size cap of {cap} bytes (aborted while reading)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _transient(status: int) -> bool:
    return status in (408, 429) or (status >= 500 and status not in _NOT_TRANSIENT)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _excerpt(response: httpx.Response) -> str:
    """The start of an error answer's text (what an endpoint says went wrong), if not HTML."""
    media = response.headers.get("Content-Type", "").lower()
    if "html" in media:
        return ""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= 4 * _ERROR_EXCERPT:
                break
    except httpx.HTTPError:
        return ""
    text = " ".join(data.decode("utf-8", "replace").split())
    if not text:
        return ""
    return f": {text[:_ERROR_EXCERPT]}{'…' if len(text) > _ERROR_EXCERPT else ''}"
