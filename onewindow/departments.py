"""The department registry: which codes exist and which input topic each owns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from onewindow.errors import ConfigError

CODE_RE = re.compile(r"^[a-z0-9-]+$")
ROLES = ("counter", "department")


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str
    name_en: str
    role: str


@dataclass(frozen=True)
class Registry:
    departments: tuple[Department, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(d.code for d in self.departments)

    @property
    def counter_codes(self) -> frozenset[str]:
        """The codes whose role is ``counter``: the only departments that may publish a
        CaseAccepted or CaseWithdrawn (domain.md section 2, ``UNAUTHORISED``)."""
        return frozenset(d.code for d in self.departments if d.role == "counter")

    def get(self, code: str) -> Department | None:
        for d in self.departments:
            if d.code == code:
                return d
        return None


def load_registry(path: Path | None = None) -> Registry:
    """Read the registry file (the packaged default when `path` is None) and check it."""
    if path is None:
        text = resources.files("onewindow.data").joinpath("departments.yaml").read_text("utf-8")
        where = "packaged departments.yaml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"department registry {path}: {exc.strerror}") from exc
        where = str(path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"department registry {where}: not valid YAML: {exc}") from exc
    items = raw.get("departments") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"department registry {where}: needs a non-empty 'departments' list")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ConfigError(f"department registry {where}: entry {i} is not a mapping")
        code = str(item.get("code", ""))
        if not CODE_RE.match(code):
            raise ConfigError(f"department registry {where}: entry {i}: code {code!r} "
                              "must match [a-z0-9-]+")
        if code in seen:
            raise ConfigError(f"department registry {where}: code {code!r} appears twice")
        role = str(item.get("role", "department"))
        if role not in ROLES:
            raise ConfigError(f"department registry {where}: {code}: role must be one of {ROLES}")
        seen.add(code)
        out.append(Department(code, str(item.get("name", code)),
                              str(item.get("name_en", code)), role))
    return Registry(tuple(out))
