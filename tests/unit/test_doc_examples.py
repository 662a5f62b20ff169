"""The GraphQL examples of the README and the guides are valid against the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import parse, validate

from catalogue.api.graphql.schema import schema

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```graphql\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    found = []
    for name in (
        "README.md",
        "docs/user-guide.md",
        "docs/curator-guide.md",
        "docs/harvest-contract.md",
        "docs/api-guide.md",
    ):
        for n, block in enumerate(BLOCK.findall((ROOT / name).read_text())):
            text = block.strip()
            if text.startswith(("{", "query", "mutation")):  # whole operations, not fragments
                # a block may hold several operations side by side: each is checked alone
                for m, operation in enumerate(re.split(r"\n(?=\{|query\b|mutation\b)", text)):
                    found.append((f"{name}#{n}.{m}", operation))
    return found


@pytest.mark.parametrize(("where", "text"), examples(), ids=[w for w, _ in examples()])
def test_example_is_valid(where: str, text: str) -> None:
    errors = validate(schema._schema, parse(text))
    assert not errors, f"{where}: {[e.message for e in errors]}"


def test_there_are_examples() -> None:
    assert len(examples()) >= 5
