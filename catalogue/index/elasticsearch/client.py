"""One connection to the cluster for the Elasticsearch backends: the official async client,
run on an event loop in a daemon thread so that the (synchronous) index ports can call it from
any thread; versioned indexes behind aliases; bulk loading with backpressure and retries.

Index names: `<prefix>-<kind>-<version>` behind the alias `<prefix>-<kind>`, where `<version>`
is a digest of the mapping file (schemas/index/<kind>.json): a new mapping gets a new index,
which `rebuild` fills before `swap` moves the alias to it (no downtime).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from catalogue.config import ElasticsearchSettings
from catalogue.exceptions import StoreError

T = TypeVar("T")

MAPPINGS = Path(__file__).resolve().parents[3] / "schemas" / "index"
"""The mapping and settings of each kind of index, one JSON file each."""

BULK_CHUNK = 2_000
BULK_BYTES = 16 * 1024 * 1024
BULK_RETRIES = 5
REOPEN_RETRIES = 50
"""A bulk chunk the cluster refuses as too many requests (429) is retried, backing off."""


def mapping(kind: str) -> dict[str, Any]:
    """The index body (settings and mappings) of a kind of index."""
    path = MAPPINGS / f"{kind}.json"
    try:
        body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the Elasticsearch mapping {path}: {exc}") from exc
    return body


def version_of(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]


class EsClient:
    """The cluster, for one deployment (its index prefix)."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        try:
            from elasticsearch import AsyncElasticsearch
        except ImportError as exc:  # the optional dependency
            raise StoreError(
                "the Elasticsearch backends need the `elasticsearch` package: "
                "pip install 'cancer-imaging-catalogue[elasticsearch]'"
            ) from exc
        self.settings = settings
        self.prefix = settings.index_prefix
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="elasticsearch", daemon=True
        )
        self._thread.start()
        options: dict[str, Any] = {"request_timeout": settings.request_timeout}
        if settings.api_key is not None:
            options["api_key"] = settings.api_key.get_secret_value()
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            options["basic_auth"] = (settings.username, password)
        if settings.ca_certs is not None:
            options["ca_certs"] = str(settings.ca_certs)

        async def connect() -> AsyncElasticsearch:
            return AsyncElasticsearch(settings.url, retry_on_timeout=True, max_retries=3, **options)

        self.es = self._run(connect())

    def _run(self, coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result()

    def call(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run `work(client)` on the client's loop and wait for it; the client's errors become
        StoreError."""
        from elasticsearch import ApiError, TransportError

        try:
            return self._run(work(self.es))
        except (ApiError, TransportError) as exc:
            raise StoreError(f"Elasticsearch at {self.settings.url}: {exc}") from exc

    def body(self, kind: str) -> dict[str, Any]:
        """The mapping file of `kind` with the deployment's shards and replicas, if set."""
        body = mapping(kind)
        chosen = {"number_of_shards": self.settings.shards}
        chosen["number_of_replicas"] = self.settings.replicas
        for name, value in chosen.items():
            if value is not None:
                body.setdefault("settings", {})[name] = value
        return body

    def read(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """`call` for a read that may meet its index closed for a moment (similarities being
        set) or its shard starting again: retried every 0.2 s, for up to 10 s."""
        from elasticsearch import ApiError

        async def retried(es: Any) -> T:
            for attempt in range(REOPEN_RETRIES):
                try:
                    return await work(es)
                except ApiError as exc:
                    reopening = "index_closed" in str(exc) or exc.meta.status == 503
                    if not reopening or attempt == REOPEN_RETRIES - 1:
                        raise
                    await asyncio.sleep(0.2)
            raise AssertionError("unreachable")

        return self.call(retried)

    def alias(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def ensure(self, kind: str) -> str:
        """The index the alias of `kind` points to, created (from its mapping) with the alias
        when there is none; a mapping that changed is not applied here (see `rebuild`)."""
        alias = self.alias(kind)

        async def work(es: Any) -> str:
            if await es.indices.exists_alias(name=alias):
                found = await es.indices.get_alias(name=alias)
                return str(next(iter(found)))
            body = self.body(kind)
            name = f"{alias}-{version_of(body)}"
            if not await es.indices.exists(index=name):
                await es.indices.create(index=name, **body)
            await es.indices.update_aliases(
                actions=[{"add": {"index": name, "alias": alias, "is_write_index": True}}]
            )
            return name

        return self.call(work)

    def current(self, kind: str) -> str | None:
        """The index the alias of `kind` points to, or None."""
        alias = self.alias(kind)

        async def work(es: Any) -> str | None:
            if not await es.indices.exists_alias(name=alias):
                return None
            return str(next(iter(await es.indices.get_alias(name=alias))))

        return self.call(work)

    def fresh(self, kind: str) -> str:
        """A new empty index of `kind` (not behind the alias yet), from the current mapping."""
        body = self.body(kind)
        name = f"{self.alias(kind)}-{version_of(body)}-{secrets.token_hex(3)}"

        async def work(es: Any) -> str:
            if await es.indices.exists(index=name):
                await es.indices.delete(index=name)
            await es.indices.create(index=name, **body)
            return name

        return self.call(work)

    def swap(self, kind: str, index: str) -> None:
        """Point the alias of `kind` at `index` in one atomic step, then drop the old index."""
        alias = self.alias(kind)
        old = self.current(kind)

        async def work(es: Any) -> None:
            await es.indices.refresh(index=index)
            actions: list[dict[str, Any]] = [
                {"add": {"index": index, "alias": alias, "is_write_index": True}}
            ]
            if old is not None and old != index:
                actions.insert(0, {"remove": {"index": old, "alias": alias}})
            await es.indices.update_aliases(actions=actions)
            if old is not None and old != index:
                await es.indices.delete(index=old)

        self.call(work)

    def bulk(
        self,
        actions: Iterable[dict[str, Any]],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Send bulk actions in chunks, one chunk in flight at a time (backpressure), retrying
        chunks refused with 429; return how many succeeded. Any failed action is a StoreError
        naming the first failure."""
        from elasticsearch.helpers import async_streaming_bulk

        async def work(es: Any) -> int:
            done, failed = 0, []

            async def stream() -> AsyncIterator[dict[str, Any]]:
                for action in actions:
                    yield action

            async for ok, item in async_streaming_bulk(
                es,
                stream(),
                chunk_size=BULK_CHUNK,
                max_chunk_bytes=BULK_BYTES,
                max_retries=BULK_RETRIES,
                initial_backoff=1,
                raise_on_error=False,
                raise_on_exception=True,
            ):
                if ok:
                    done += 1
                    if progress is not None and done % BULK_CHUNK == 0:
                        progress(done)
                else:
                    failed.append(item)
            if failed:
                raise StoreError(f"{len(failed)} bulk actions failed; the first: {failed[0]}")
            return done

        return self.call(work)

    def close(self) -> None:
        try:
            self._run(self.es.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
