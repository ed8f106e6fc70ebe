"""Configuration as dataclasses, read from a TOML file and PORCHLIGHT_* environment variables.

Every component has its own dataclass and gets it through its constructor; nothing reads the
environment at import time. Precedence: defaults < file < environment < explicit overrides.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from porchlight.errors import ConfigError

T = TypeVar("T")

ENV_PREFIX = "PORCHLIGHT_"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where Porchlight keeps its files: PORCHLIGHT_DATA_DIR, else a per-user folder."""
    env = os.environ if env is None else env
    if env.get("PORCHLIGHT_DATA_DIR"):
        return Path(env["PORCHLIGHT_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "porchlight"


def _convert(name: str, raw: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if (raw is None or (isinstance(raw, str) and raw == "")) and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(name, raw, inner[0])
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    if hint in (int, float):
        try:
            return hint(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if hint is Path:
        return Path(str(raw)).expanduser()
    if origin in (list, tuple) or hint in (list, tuple):
        items = raw if isinstance(raw, list | tuple) else [s for s in str(raw).split(",") if s]
        item_hint = args[0] if args else str
        values = [_convert(name, item, item_hint) for item in items]
        return tuple(values) if (origin is tuple or hint is tuple) else values
    if hint is str:
        return str(raw)
    return raw


def load(
    cls: type[T],
    section: str,
    *,
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> T:
    """Build `cls` from defaults, the `[section]` table of `file`, env vars and overrides.

    Environment variables are named PORCHLIGHT_<SECTION>_<FIELD>; a field called `data_dir`
    also honours the shared PORCHLIGHT_DATA_DIR.
    """
    env = os.environ if env is None else env
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    if file is not None:
        try:
            table = tomllib.loads(Path(file).read_text()).get(section, {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {file}: {exc}") from None
        values.update(table)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{ENV_PREFIX}{section.upper()}_{field.name.upper()}"
        if key in env:
            values[field.name] = env[key]
        elif field.name == "data_dir" and env.get("PORCHLIGHT_DATA_DIR"):
            values[field.name] = env["PORCHLIGHT_DATA_DIR"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {section} setting(s): {', '.join(unknown)}")
    converted = {k: _convert(f"{section}.{k}", v, hints[k]) for k, v in values.items()}
    return cls(**converted)
