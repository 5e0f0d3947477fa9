"""Fast, conservative acceptance of instances for simple JSON Schemas (draft 4 subset).

Most self-describing events and entities use a small part of draft 4 (types, properties,
required, additionalProperties, enum, lengths, patterns, bounds, items). For such schemas this
module compiles a plain-Python predicate once per schema. The predicate answers True only when
the instance is certainly valid; on False (invalid, or anything it is not sure about) the
collector runs ``jsonschema`` itself, which also produces the error messages. A schema using any
other validation keyword (``$ref``, ``allOf``, ``patternProperties``, ...) gets no predicate.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

__all__ = ["compile_acceptor"]

Predicate = Callable[[Any], bool]

_UNSUPPORTED = frozenset(
    (
        "$ref",
        "additionalItems",
        "allOf",
        "anyOf",
        "dependencies",
        "multipleOf",
        "not",
        "oneOf",
        "patternProperties",
        "uniqueItems",
    )
)


class _Unsupported(Exception):
    pass


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: Dict[str, Predicate] = {
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
}


def _enum_member(value: Any, members: List[Any]) -> bool:
    if isinstance(value, bool):
        return any(isinstance(m, bool) and m is value for m in members)
    if _is_number(value):
        return any(_is_number(m) and m == value for m in members)
    if value is None or isinstance(value, str):
        return any(type(m) is type(value) and m == value for m in members)
    return False  # arrays and objects: let jsonschema decide


def _count(schema: Dict[str, Any], key: str) -> Optional[int]:
    value = schema.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Unsupported
    return value


Formats = Optional[Dict[str, Predicate]]


def _compile(schema: Any, formats: Formats) -> Predicate:
    if not isinstance(schema, dict):
        raise _Unsupported
    if _UNSUPPORTED & schema.keys():
        raise _Unsupported
    checks: List[Predicate] = []

    kind = schema.get("type")
    if kind is not None:
        names = [kind] if isinstance(kind, str) else kind
        if not isinstance(names, list) or not all(n in _TYPES for n in names):
            raise _Unsupported
        checks.append(_type_check(names))

    if "enum" in schema:
        members = schema["enum"]
        if not isinstance(members, list):
            raise _Unsupported
        checks.append(lambda v: _enum_member(v, members))

    checks.extend(_string_checks(schema, formats))
    checks.extend(_number_checks(schema))
    checks.extend(_object_checks(schema, formats))
    checks.extend(_array_checks(schema, formats))

    return _all_of(checks)


def _all_of(checks: List[Predicate]) -> Predicate:
    if not checks:
        return lambda _v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    if len(checks) == 3:
        one, two, three = checks
        return lambda v: one(v) and two(v) and three(v)
    frozen = tuple(checks)

    def every(v: Any) -> bool:
        for check in frozen:  # noqa: SIM110 - a loop is cheaper than all() over a generator
            if not check(v):
                return False
        return True

    return every


#: Python classes that certainly are of a JSON type (``bool`` is not a number here).
_CLASSES: Dict[str, tuple] = {  # type: ignore[type-arg]
    "array": (list,),
    "boolean": (bool,),
    "integer": (int,),
    "null": (type(None),),
    "number": (int, float),
    "object": (dict,),
    "string": (str,),
}


def _type_check(names: List[str]) -> Predicate:
    """True when the value's exact class is one of the types (subclasses: not sure, False)."""
    # Exact classes: True and False (class bool) are not numbers unless "boolean" is named.
    classes = frozenset(cls for name in names for cls in _CLASSES[name])
    return lambda v: v.__class__ in classes


def _string_checks(schema: Dict[str, Any], formats: Formats) -> List[Predicate]:
    checks: List[Predicate] = []
    min_length, max_length = _count(schema, "minLength"), _count(schema, "maxLength")
    if min_length is not None or max_length is not None:
        low = min_length if min_length is not None else 0
        high = max_length
        checks.append(
            lambda v: not isinstance(v, str) or (low <= len(v) and (high is None or len(v) <= high))
        )
    if "pattern" in schema:
        try:
            regex = re.compile(schema["pattern"])
        except (re.error, TypeError):
            raise _Unsupported from None
        checks.append(lambda v: not isinstance(v, str) or regex.search(v) is not None)
    if "format" in schema and formats is not None:
        name = schema["format"]
        if name in formats:
            test = formats[name]
            checks.append(lambda v: not isinstance(v, str) or test(v))
        elif name is not None:
            checks.append(lambda v: not isinstance(v, str))  # unknown to us: let jsonschema judge
    return checks


def _number_checks(schema: Dict[str, Any]) -> List[Predicate]:
    checks: List[Predicate] = []
    if "minimum" in schema:
        low = schema["minimum"]
        if not _is_number(low):
            raise _Unsupported
        if schema.get("exclusiveMinimum") is True:
            checks.append(lambda v: not _is_number(v) or v > low)
        else:
            checks.append(lambda v: not _is_number(v) or v >= low)
    if "maximum" in schema:
        high = schema["maximum"]
        if not _is_number(high):
            raise _Unsupported
        if schema.get("exclusiveMaximum") is True:
            checks.append(lambda v: not _is_number(v) or v < high)
        else:
            checks.append(lambda v: not _is_number(v) or v <= high)
    return checks


def _object_checks(schema: Dict[str, Any], formats: Formats) -> List[Predicate]:
    checks: List[Predicate] = []
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise _Unsupported
    compiled = {name: _compile(sub, formats) for name, sub in properties.items()}
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise _Unsupported
    additional = schema.get("additionalProperties", True)
    extra: Optional[Predicate]
    if additional is True:
        extra = None
    elif additional is False:
        extra = lambda _v: False  # noqa: E731
    else:
        extra = _compile(additional, formats)
    min_props, max_props = _count(schema, "minProperties"), _count(schema, "maxProperties")
    if not (compiled or required or extra or min_props is not None or max_props is not None):
        return checks

    def check_object(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name in required:
            if name not in value:
                return False
        if min_props is not None and len(value) < min_props:
            return False
        if max_props is not None and len(value) > max_props:
            return False
        for key, item in value.items():
            sub = compiled.get(key)
            if sub is not None:
                if not sub(item):
                    return False
            elif extra is not None and not extra(item):
                return False
        return True

    checks.append(check_object)
    return checks


def _array_checks(schema: Dict[str, Any], formats: Formats) -> List[Predicate]:
    checks: List[Predicate] = []
    if "items" in schema:
        items = schema["items"]
        if not isinstance(items, dict):
            raise _Unsupported  # tuple validation
        each = _compile(items, formats)

        def check_items(v: Any) -> bool:
            if isinstance(v, list):
                for item in v:
                    if not each(item):
                        return False
            return True

        checks.append(check_items)
    min_items, max_items = _count(schema, "minItems"), _count(schema, "maxItems")
    if min_items is not None:
        checks.append(lambda v: not isinstance(v, list) or len(v) >= min_items)
    if max_items is not None:
        checks.append(lambda v: not isinstance(v, list) or len(v) <= max_items)
    return checks


def compile_acceptor(schema: Any, formats: Formats) -> Optional[Predicate]:
    """A predicate that returns True only for instances certainly valid against ``schema``.

    ``formats`` maps the format names that are enforced to their checks (the same checks the
    jsonschema validator uses); ``None`` means formats are not enforced at all. Returns
    ``None`` when the schema uses unsupported keywords.
    """
    try:
        return _compile(schema, formats)
    except (_Unsupported, TypeError, ValueError):
        return None
