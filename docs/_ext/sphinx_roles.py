"""Griffe extension for the documentation build: Sphinx roles in docstrings become links.

The package's docstrings are Google style but cross-reference with Sphinx roles
(``:class:`Subject```, ``:meth:`force_flush```), which IDEs understand. MkDocs renders
Markdown, so this extension rewrites each role when the package is loaded: into an
autorefs link (``[`Subject`][snowplow_tracker.subject.Subject]``) when the target is an
object of the package, or into plain code (``json.dumps``) otherwise.
Loaded by mkdocs.yml (``extensions:`` of the mkdocstrings Python handler).
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Optional

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):`(~?)([^`]+)`")
_CALLABLE_ROLES = (":meth:", ":func:")


def _walk(obj: Any) -> Iterator[Any]:
    yield obj
    for member in list(obj.members.values()):
        if member.is_alias:
            continue
        if member.is_module or member.is_class:
            yield from _walk(member)
        else:
            yield member


def _lookup(scope: Any, dotted: str) -> Optional[str]:
    """The path of ``dotted`` (``Name`` or ``Name.member``) among the members of ``scope``.

    The object's own (canonical) path is preferred; when that is private (a class
    defined in a private module and re-exported), the public path it was found under is
    used. Returns None when the name is not found, or when the object is private or has no
    docstring (it is not rendered, so not linkable).
    """
    current, path = scope, scope.path
    for part in dotted.split("."):
        members = getattr(current, "members", None)
        if members is None or part not in members:
            return None
        current, path = members[part], f"{path}.{part}"
        if current.is_alias:
            try:
                current = current.final_target
            except Exception:
                return None
    if not current.docstring:
        return None
    for candidate in (current.path, path):
        if not any(part.startswith("_") for part in candidate.split(".")):
            return str(candidate)
    return None


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of the loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:

                def replace(match: re.Match[str], obj: Any = obj) -> str:
                    return self._replace(match, obj, pkg)

                obj.docstring.value = _ROLE.sub(replace, obj.docstring.value)

    def _replace(self, match: re.Match[str], obj: Any, pkg: griffe.Module) -> str:
        role = match.group(0)
        short, target = match.group(1) == "~", match.group(2)
        suffix = "()" if role.startswith(_CALLABLE_ROLES) else ""
        found = self._resolve(target, obj, pkg)
        label = target.rsplit(".", 1)[-1] if short else target
        if found is None:
            return f"`{label}{suffix}`"
        return f"[`{label}{suffix}`][{found}]"

    @staticmethod
    def _resolve(target: str, obj: Any, pkg: griffe.Module) -> Optional[str]:
        if target.startswith(pkg.name + "."):
            return _lookup(pkg, target[len(pkg.name) + 1 :])
        # Search outwards: the object itself (for classes), its parents, then the package.
        scope: Any = obj
        while scope is not None:
            found = _lookup(scope, target)
            if found is not None:
                return found
            scope = scope.parent
        return None
