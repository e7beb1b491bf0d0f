"""The configuration reference, generated from the settings model (``trackwire config-reference``)."""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from trackwire.config import Settings

__all__ = ["config_reference"]


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a).replace("'", '"') for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in get_args(annotation) if a is not type(None)) + " (optional)"
    if origin in (tuple, list):
        inner = get_args(annotation)
        return f"list of {_type_name(inner[0])}" if inner else "list"
    if origin is dict:
        return "table"
    if annotation is SecretStr:
        return "secret string"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "Path": "path"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
        return "" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "required"
    if isinstance(field.default, SecretStr):
        return "(secret)"
    return f"`{field.default!r}`".replace("PosixPath", "Path")


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The section model behind a field, and how it is written in TOML (table, array, named tables)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "table"
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if origin in (tuple, list) and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], "array"
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return args[1], "named"
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _model_of(args[0])
    return None, ""


def _section(model: type[BaseModel], name: str, how: str, out: list[str]) -> None:
    header = {"table": f"[{name}]", "array": f"[[{name}]]", "named": f"[{name}.NAME]"}[how]
    out.append(f"## `{header}`\n")
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith(("Usage docs", "A base class")):
        out.append(doc.splitlines()[0] + "\n")
    rows: list[str] = []
    nested: list[tuple[type[BaseModel], str, str]] = []
    for key, field in model.model_fields.items():
        if field.exclude:
            continue
        sub, sub_how = _model_of(field.annotation)
        if sub is not None:
            nested.append((sub, f"{name}.{key}", sub_how))
            continue
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    if rows:
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        out.extend(rows)
        out.append("")
    for sub, sub_name, sub_how in nested:
        _section(sub, sub_name, sub_how, out)


def config_reference() -> str:
    out = [
        "# Configuration reference\n",
        "Generated from the settings model by `trackwire config-reference`; do not edit by hand.",
        "Every key can be overridden by an environment variable `TRACKWIRE_<SECTION>__<KEY>` (for example",
        "`TRACKWIRE_WEB__PORT=9000`). Relative paths are relative to the configuration file. A misspelt key or",
        "a wrong type stops start-up with the file, the key path and the reason.\n",
    ]
    for key, field in Settings.model_fields.items():
        if field.exclude:
            continue
        model, how = _model_of(field.annotation)
        if model is not None:
            _section(model, key, how, out)
    return "\n".join(out).rstrip() + "\n"
