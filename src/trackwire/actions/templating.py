"""Action parameters rendered from the firing in a sandboxed Jinja2 environment.

The sandbox refuses unsafe attribute access (``__class__``, ``__globals__``...) and undefined names fail
loudly (``StrictUndefined``); a rendering error is not retried: the definition must be fixed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from trackwire.actions.base import ActionError

__all__ = ["render", "render_text"]


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson_compact"] = lambda v: __import__("json").dumps(v, separators=(",", ":"), default=str)
    return env


def render_text(template: str, variables: dict[str, Any]) -> str:
    if "{" not in template:
        return template
    try:
        return _environment().from_string(template).render(variables)
    except TemplateError as exc:
        raise ActionError(f"template {template!r} failed: {type(exc).__name__}: {exc}", retry=False) from exc


def render(value: Any, variables: dict[str, Any]) -> Any:
    """Render every string inside ``value`` (dicts and lists are walked; other values are kept)."""
    if isinstance(value, str):
        return render_text(value, variables)
    if isinstance(value, list | tuple):
        return [render(v, variables) for v in value]
    if isinstance(value, dict):
        return {render_text(str(k), variables): render(v, variables) for k, v in value.items()}
    return value
