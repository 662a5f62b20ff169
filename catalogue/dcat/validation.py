"""SHACL validation of dataset descriptions: DCAT-AP 3.0.1, HealthDCAT-AP r8 per access level and
the imaging extension, with pySHACL.

Shapes are parsed and compiled once per shape set and reused for every graph. pySHACL runs with no
inference (the shapes need none; RDFS inference over harvested data would only add noise).

Class ranges (`sh:class`) are read open-world by default: DCAT-AP's range shapes need the
`rdf:type` of every object, which a harvested description rarely states for the things it merely
points to (an EU vocabulary concept, a licence IRI). A class-range result on a value whose type
the data does not state is therefore reported as a Warning, not a Violation; a value typed as
something else stays a Violation. Alternatives (sh:or, sh:xone) on an untyped value are lowered
alike. A nested shape (sh:node) is a Violation only while one of its nested results is, and a
Warning when its value is only referred to, not described, in the data (its description lives
elsewhere: an authority table, the access body's own record). `strict=True` keeps every severity
as the shapes give it (the official shapes' closed reading).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from importlib import resources

from pyshacl import Validator
from pyshacl.graph_abstraction import DataGraph
from pyshacl.shapes_graph import ShapesGraph
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import SH, NamespaceManager
from rdflib.term import Node

from catalogue.dcat.access_levels import AccessLevel, access_level
from catalogue.dcat.namespaces import DCAT, PREFIXES, RDF
from catalogue.dcat.parser import dataset_nodes, reachable

DCAT_AP_FILES = (
    "dcat-ap-3.0.1_shapes.ttl",
    "dcat-ap-3.0.1_range.ttl",
    "dcat-ap-3.0.1_shapes_recommended.ttl",
)
HEALTH_COMMON_FILE = "healthdcat-ap-r8-common.ttl"
IMAGING_FILE = "imaging-extension.ttl"
PROFILE = "DCAT-AP 3.0.1, HealthDCAT-AP r8 (our shapes), imaging extension"

_PREFIXES = {
    **PREFIXES,
    "csvw": "http://www.w3.org/ns/csvw#",
    "dqv": "http://www.w3.org/ns/dqv#",
}
_NESTING = {"NodeConstraintComponent", "QualifiedValueShapeConstraintComponent"}
_ALTERNATIVES = {"OrConstraintComponent", "XoneConstraintComponent"}


class Severity(StrEnum):
    """SHACL severities; only violations make a description non-conforming."""

    VIOLATION = "Violation"
    WARNING = "Warning"
    INFO = "Info"


_SEVERITIES: dict[Node | None, Severity] = {
    SH.Violation: Severity.VIOLATION,
    SH.Warning: Severity.WARNING,
    SH.Info: Severity.INFO,
}
_RANK = {Severity.VIOLATION: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class ValidationResult:
    """One SHACL result. `path` is the predicate IRI, or a SPARQL property path for complex
    paths; `shape` the IRI of the source shape (of its node shape for a blank property shape)."""

    severity: Severity
    focus_node: Node
    path: str | None
    message: str
    shape: str | None
    value: Node | None
    component: str
    details: tuple[ValidationResult, ...] = ()
    downgraded: bool = False


@dataclass(frozen=True)
class ValidationReport:
    """Every result of one validation, and the access level each dataset was checked at."""

    results: tuple[ValidationResult, ...]
    levels: Mapping[Node, AccessLevel]
    prefixes: tuple[tuple[str, str], ...] = ()

    @property
    def violations(self) -> tuple[ValidationResult, ...]:
        return tuple(r for r in self.results if r.severity is Severity.VIOLATION)

    @property
    def warnings(self) -> tuple[ValidationResult, ...]:
        return tuple(r for r in self.results if r.severity is Severity.WARNING)

    @property
    def conforms(self) -> bool:
        return not self.violations

    def text(self) -> str:
        """A readable report, grouped by focus node, violations first."""
        names = NamespaceManager(Graph(), bind_namespaces="rdflib")
        for prefix, namespace in self.prefixes:
            names.bind(prefix, namespace, override=True, replace=True)
        verdict = "conforms" if self.conforms else "does not conform"
        counts = (
            f"{_count(len(self.violations), 'violation')}, {_count(len(self.warnings), 'warning')}"
        )
        lines = [f"{PROFILE}: {verdict} ({counts})"]
        for node, level in sorted(self.levels.items(), key=lambda item: str(item[0])):
            lines.append(f"  dataset {node.n3(names)} checked at access level {level}")
        groups: dict[Node, list[ValidationResult]] = {}
        for result in self.results:
            groups.setdefault(result.focus_node, []).append(result)
        ordered = sorted(
            groups.items(), key=lambda g: (min(_RANK[r.severity] for r in g[1]), str(g[0]))
        )
        for focus, results in ordered:
            lines.append("")
            lines.append(focus.n3(names))
            for result in sorted(results, key=lambda r: (_RANK[r.severity], r.path or "")):
                lines.extend(_result_lines(result, names, "  "))
        return "\n".join(lines) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _result_lines(result: ValidationResult, names: NamespaceManager, indent: str) -> list[str]:
    line = f"{indent}{result.severity:<9} {_path_label(result.path, names)}: {result.message}"
    if result.value is not None and not isinstance(result.value, BNode):
        line += f" [value {result.value.n3(names)}]"
    lines = [line]
    for detail in result.details:
        lines.append(f"{indent}    on {detail.focus_node.n3(names)}:")
        lines.extend(_result_lines(detail, names, indent + "      "))
    return lines


def _path_label(path: str | None, names: NamespaceManager) -> str:
    if path is None:
        return "-"
    if "<" in path:
        return re.sub(r"<([^>]+)>", lambda m: URIRef(m[1]).n3(names), path)
    return URIRef(path).n3(names)


class ShapeSet:
    """A shapes graph parsed once and compiled once into pySHACL shapes, reused for every run."""

    def __init__(self, name: str, graph: Graph) -> None:
        self.name = name
        self.graph = graph
        self._compiled = ShapesGraph(graph)
        _ = self._compiled.shapes  # compile now: a broken shape fails here, not mid-harvest
        self._lock = threading.Lock()

    @classmethod
    def from_package(cls, name: str, files: Iterable[str]) -> ShapeSet:
        """The shapes in catalogue/dcat/shapes (package data), merged into one graph."""
        graph = Graph()
        folder = resources.files("catalogue.dcat.shapes")
        for file in files:
            graph.parse(data=folder.joinpath(file).read_bytes(), format="turtle")
        return cls(name, graph)

    def report_graph(self, data: Graph) -> Graph:
        """pySHACL's validation report graph for one data graph."""
        options = {"inference": "none", "advanced": False, "allow_warnings": False}
        with self._lock:
            validator = Validator(
                DataGraph.from_rdflib(data), shacl_graph=self.graph, options=options
            )
            validator.shacl_graph = self._compiled  # pySHACL would recompile per Validator
            _, report, _ = validator.run()  # type: ignore[no-untyped-call]
        assert isinstance(report, Graph)
        return report

    def results(self, data: Graph) -> list[ValidationResult]:
        """The top-level results for one data graph, with their nested details."""
        report = self.report_graph(data)
        return [
            _result(report, self.graph, node)
            for root in report.subjects(RDF.type, SH.ValidationReport)
            for node in report.objects(root, SH.result)
        ]


@functools.cache
def dcat_ap_shapes() -> ShapeSet:
    """The official DCAT-AP 3.0.1 shapes: core constraints, class ranges, recommendations."""
    return ShapeSet.from_package("DCAT-AP 3.0.1", DCAT_AP_FILES)


@functools.cache
def health_shapes(level: AccessLevel) -> ShapeSet:
    """Our HealthDCAT-AP r8 shapes for one access level, with the imaging extension."""
    files = (HEALTH_COMMON_FILE, f"healthdcat-ap-r8-{level.value}.ttl", IMAGING_FILE)
    return ShapeSet.from_package(f"HealthDCAT-AP r8 {level}", files)


def validate(
    graph: Graph, level: AccessLevel | None = None, *, strict: bool = False
) -> ValidationReport:
    """Validate a catalogue or dataset graph against DCAT-AP 3.0.1 and, for each dataset, the
    HealthDCAT-AP r8 shapes of `level`, or of its own dct:accessRights when `level` is None."""
    levels = {node: level or access_level(graph, node) for node in dataset_nodes(graph)}
    groups: dict[AccessLevel, list[Node]] = {}
    for node, node_level in levels.items():
        groups.setdefault(node_level, []).append(node)
    if not groups:  # the shapes report that the graph describes no dataset
        groups[level or AccessLevel.NON_PUBLIC] = []
    results = dcat_ap_shapes().results(graph)
    stop = set(graph.subjects(RDF.type, DCAT.Catalog)) | set(levels)
    for group_level, nodes in groups.items():
        data = graph if len(groups) == 1 else _descriptions(graph, nodes, stop)
        results.extend(health_shapes(group_level).results(data))
    return _report(graph, results, levels, strict)


def validate_with(graph: Graph, shapes: ShapeSet, *, strict: bool = True) -> ValidationReport:
    """Validate a graph against any shape set with the same machinery (no access levels)."""
    return _report(graph, shapes.results(graph), {}, strict)


def _report(
    graph: Graph, results: list[ValidationResult], levels: Mapping[Node, AccessLevel], strict: bool
) -> ValidationReport:
    if not strict:
        results = [_open_world(graph, result) for result in results]
    results.sort(key=lambda r: (str(r.focus_node), _RANK[r.severity], r.path or "", r.message))
    ours = set(_PREFIXES.values())
    prefixes = [
        (prefix, str(ns))
        for prefix, ns in graph.namespaces()
        if prefix and prefix not in _PREFIXES and str(ns) not in ours
    ]
    return ValidationReport(tuple(results), dict(levels), (*prefixes, *_PREFIXES.items()))


def _descriptions(graph: Graph, roots: list[Node], stop: set[Node]) -> Graph:
    """The triples describing some datasets: everything reachable from them through nodes the
    graph describes, stopping at `stop` (the other datasets and the catalogues)."""
    return reachable(graph, roots, lambda _, obj: not isinstance(obj, Literal) and obj not in stop)


def _open_world(graph: Graph, result: ValidationResult) -> ValidationResult:
    """Lower to a Warning what fails only for want of types or descriptions the data does not
    give (see the module docstring)."""
    details = tuple(_open_world(graph, detail) for detail in result.details)
    result = replace(result, details=details)
    value = result.value
    if result.severity is not Severity.VIOLATION or value is None or isinstance(value, Literal):
        return result
    ranged = result.component == "ClassConstraintComponent" or result.component in _ALTERNATIVES
    if ranged and (value, RDF.type, None) not in graph:
        return _lowered(result, "its type is not stated in the data")
    if result.component in _NESTING:
        if (value, None, None) not in graph:
            return _lowered(result, "it is not described in the data")
        if details and all(d.severity is not Severity.VIOLATION for d in details):
            return _lowered(result, "none of its nested results is a violation")
    return result


def _lowered(result: ValidationResult, why: str) -> ValidationResult:
    return replace(
        result,
        severity=Severity.WARNING,
        message=f"{result.message} (a warning: {why})",
        downgraded=True,
    )


def _result(report: Graph, shapes: Graph, node: Node) -> ValidationResult:
    severity = _SEVERITIES.get(report.value(node, SH.resultSeverity), Severity.VIOLATION)
    component = report.value(node, SH.sourceConstraintComponent)
    focus = report.value(node, SH.focusNode)
    assert focus is not None
    message = report.value(node, SH.resultMessage)
    path = report.value(node, SH.resultPath)
    return ValidationResult(
        severity=severity,
        focus_node=focus,
        path=None if path is None else _path(report, path),
        message=str(message) if message is not None else str(component),
        shape=_shape(shapes, report.value(node, SH.sourceShape)),
        value=report.value(node, SH.value),
        component=str(component).rsplit("#", 1)[-1],
        details=tuple(_result(report, shapes, d) for d in report.objects(node, SH.detail)),
    )


def _shape(shapes: Graph, shape: Node | None) -> str | None:
    if isinstance(shape, URIRef):
        return str(shape)
    owner = shapes.value(predicate=SH.property, object=shape) if shape is not None else None
    return str(owner) if isinstance(owner, URIRef) else None


def _path(graph: Graph, path: Node, nested: bool = False) -> str:
    """A SHACL path as its IRI (top level), or as a SPARQL property path."""
    if isinstance(path, URIRef):
        return f"<{path}>" if nested else str(path)
    operators = (
        (SH.inversePath, "^{}"),
        (SH.zeroOrMorePath, "{}*"),
        (SH.oneOrMorePath, "{}+"),
        (SH.zeroOrOnePath, "{}?"),
    )
    for predicate, template in operators:
        inner = graph.value(path, predicate)
        if inner is not None:
            return template.format(_path(graph, inner, nested=True))
    alternatives = graph.value(path, SH.alternativePath)
    if alternatives is not None:
        members = [_path(graph, p, nested=True) for p in Collection(graph, alternatives)]
        return "(" + "|".join(members) + ")"
    if (path, RDF.first, None) in graph:
        return "(" + "/".join(_path(graph, p, nested=True) for p in Collection(graph, path)) + ")"
    return str(path)
