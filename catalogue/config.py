"""Settings (CATALOGUE_ environment variables, `__` for nesting) and the YAML providers file."""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalogue import plugins
from catalogue.domain.harvest import ProviderConfig, SourceConfig
from catalogue.exceptions import ConfigError


class DisclosureSettings(BaseModel):
    """Disclosure control; threshold 1 and rounding 1 give exact counts (trusted use, tests)."""

    threshold: int = Field(default=10, ge=1)
    rounding: int = Field(default=5, ge=1)


class StoreSettings(BaseModel):
    backend: str = "oxigraph"


class IndexSettings(BaseModel):
    datasets: str = "tantivy"
    cohort: str = "duckdb"


class Settings(BaseSettings):
    """Deployment settings; every field can be set as CATALOGUE_<NAME> (CATALOGUE_A__B nested)."""

    model_config = SettingsConfigDict(
        env_prefix="CATALOGUE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("data")
    providers: Path | None = None
    secret: SecretStr | None = None
    disclosure: DisclosureSettings = DisclosureSettings()
    store: StoreSettings = StoreSettings()
    index: IndexSettings = IndexSettings()

    def master_secret(self) -> bytes:
        """The deployment secret; generated once and kept in the data folder when not set."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()


class ProvidersFile(BaseModel):
    """The providers file: every data provider and its sources."""

    providers: list[ProviderConfig]


@cache
def providers_file_model() -> type[ProvidersFile]:
    """ProvidersFile whose sources are the discriminated union of the installed source kinds."""
    kinds: list[type[SourceConfig]] = [
        plugins.load(plugins.HARVESTERS, name).config_model
        for name in plugins.available(plugins.HARVESTERS)
    ]
    union: Any = Annotated[Union[tuple(kinds)], Field(discriminator="kind")]  # noqa: UP007
    provider: Any = create_model(
        "Provider", __base__=ProviderConfig, sources=(list[union], Field(default_factory=list))
    )
    model: type[ProvidersFile] = create_model(
        "ProvidersFile", __base__=ProvidersFile, providers=(list[provider], ...)
    )
    return model


def load_providers(path: Path) -> ProvidersFile:
    """Read and validate a providers file; errors name the line and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read providers file: {exc.strerror or exc}") from exc
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if root is None:
        raise ConfigError(f"{path}: the providers file is empty")
    data = yaml.safe_load(text)
    try:
        parsed = providers_file_model().model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = _line_of(root, loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}:{line}: {field}: {first['msg']}{more}") from exc
    ids = [p.id for p in parsed.providers]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{path}: provider id used twice: {', '.join(duplicates)}")
    base = path.parent.resolve()
    for provider in parsed.providers:
        for source in provider.sources:
            for name, value in source:
                if isinstance(value, Path) and not value.is_absolute() and "://" not in str(value):
                    setattr(source, name, base / value)
    return parsed


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest YAML node that `loc` reaches."""
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is not None:
            node = child  # parts not in the file (union tags such as 'dcat') are passed over
    return node.start_mark.line + 1


def providers_json_schema() -> dict[str, Any]:
    """JSON Schema of the providers file, as exported to schemas/."""
    return providers_file_model().model_json_schema()
