"""Elasticsearch backends of the datasets and cohort indexes (docs/scaling.md), on the official
async client: `client.EsClient` gives the synchronous ports one event loop of their own."""
