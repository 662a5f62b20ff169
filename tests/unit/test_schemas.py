"""The exported schemas in schemas/ match the code; regenerate with `make schemas`."""

import json
from pathlib import Path

from catalogue.api.graphql.schema import schema
from catalogue.config import providers_json_schema

SCHEMAS = Path(__file__).parent.parent.parent / "schemas"


def test_graphql_sdl_has_not_drifted() -> None:
    exported = (SCHEMAS / "graphql" / "schema.graphql").read_text()
    assert exported == schema.as_str() + "\n", "GraphQL SDL drifted: run `make schemas`"


def test_providers_json_schema_has_not_drifted() -> None:
    exported = json.loads((SCHEMAS / "providers.schema.json").read_text())
    assert exported == providers_json_schema(), "providers schema drifted: run `make schemas`"
    kinds = {
        ref.split("/")[-1] for ref in json.dumps(exported).split('"') if ref.startswith("#/$defs/")
    }
    assert {"DcatSource", "DicomTableSource"} <= kinds
