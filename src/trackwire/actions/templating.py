"""Action parameters rendered from the firing in a sandboxed Jinja2 environment.

The sandbox refuses unsafe attribute access (``__class__``, ``__globals__``...) and undefined names fail
loudly (``StrictUndefined``); a rendering error is not retried: the definition must be fixed. A template is
compiled once; only the variables it names are read from the mapping given (so the events are not encoded for
a template that does not use them, see :class:`trackwire.actions.base.TemplateVariables`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from trackwire.actions.base import ActionError

__all__ = ["render", "render_text"]


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson_compact"] = lambda v: json.dumps(v, separators=(",", ":"), default=str)
    return env


@lru_cache(maxsize=4096)
def _compiled(template: str) -> tuple[Template, frozenset[str]]:
    """The compiled template and the names it reads from its context."""
    env = _environment()
    return env.from_string(template), frozenset(meta.find_undeclared_variables(env.parse(template)))


def render_text(template: str, variables: Mapping[str, Any]) -> str:
    if "{" not in template:
        return template
    try:
        compiled, names = _compiled(template)
        return compiled.render({name: variables[name] for name in names if name in variables})
    except TemplateError as exc:
        raise ActionError(f"template {template!r} failed: {type(exc).__name__}: {exc}", retry=False) from exc


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string inside ``value`` (dicts and lists are walked; other values are kept)."""
    if isinstance(value, str):
        return render_text(value, variables)
    if isinstance(value, list | tuple):
        return [render(v, variables) for v in value]
    if isinstance(value, dict):
        return {render_text(str(k), variables): render(v, variables) for k, v in value.items()}
    return value
