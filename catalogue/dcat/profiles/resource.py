"""The building blocks of every profile model: RDF terms as values, and `Resource`, the base
of every described node, which keeps whatever no profile understands in `extra`.

Conventions: an IRI is a plain `str`; a literal is a `Text` (plain or language-tagged) or a
`TypedLiteral` (lexical form and datatype IRI); a described node is a `Resource` subclass,
nested inside its parent; an rdf:List is an `RdfList` of its items. A field maps to one
predicate through `Prop` metadata:

    title: Annotated[list[Text], Prop(DCTERMS.title)] = []

Repeatable properties are lists; at-most-once properties are `X | None` (further values stay
in `extra`, so nothing is lost). `int` and `bool` fields need `Prop(..., datatype=...)`: only
literals of exactly that datatype, in canonical form, are read into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Prop:
    """The predicate a model field stands for (and the datatype of an `int`/`bool` field)."""

    predicate: str
    datatype: str | None = None

    def __post_init__(self) -> None:
        # Plain strings: an rdflib URIRef never equals a str.
        object.__setattr__(self, "predicate", str(self.predicate))
        if self.datatype is not None:
            object.__setattr__(self, "datatype", str(self.datatype))


class Text(BaseModel):
    """A plain literal, or a language-tagged string when `lang` is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str
    lang: str | None = None

    def __str__(self) -> str:
        return self.value


class TypedLiteral(BaseModel):
    """A literal with a datatype, kept as its lexical form (dates, decimals, tokens...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str
    datatype: str

    def __str__(self) -> str:
        return self.value


class Resource(BaseModel):
    """A node of a description: an IRI, or a blank node (`iri` None) nested in its parent.

    `node_id` is set only on a blank node that is the object of more than one triple (or the
    dataset itself when blank and referenced from inside): every occurrence but one is then a
    bare reference with the same `node_id`. `extra` holds, in order, every (predicate, object)
    that no field of the model claimed.
    """

    model_config = ConfigDict(extra="forbid")

    iri: str | None = None
    node_id: str | None = None
    types: list[str] = []
    extra: list[tuple[str, Term]] = []

    def extra_values(self, predicate: str) -> list[Term]:
        """The unclaimed objects of one predicate."""
        return [obj for pred, obj in self.extra if pred == predicate]

    def is_reference(self) -> bool:
        """True when the model only names its node (its description is elsewhere or absent)."""
        return self.model_dump(exclude={"iri", "node_id"}, exclude_defaults=True) == {}


class RdfList(BaseModel):
    """A well-formed rdf:List (blank cells of rdf:first/rdf:rest ending in rdf:nil), kept as
    its items in order; written back as fresh cells."""

    model_config = ConfigDict(extra="forbid")

    items: list[Term]


Term: TypeAlias = str | Text | TypedLiteral | Resource | RdfList
"""Any RDF object: an IRI (str), a literal, a nested node, or a list."""

Lit: TypeAlias = Text | TypedLiteral
"""Any literal."""

Resource.model_rebuild()
RdfList.model_rebuild()
