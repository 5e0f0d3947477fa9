"""Argument checks ("contracts") applied by the tracking API.

Every check raises :class:`ValueError` with a message naming the parameter, in the shapes
``"<name> is empty."``, ``"<name> is not supported."``, ``"<name> is not allowed."`` and
``"<name> must be greater than <n>."``. :func:`disable_contracts` turns every check off:
while disabled, none of these functions inspects its arguments.

The parameter name is passed in by the caller (``name=``); nothing here reads source code
or stack frames, so a check costs a global lookup and a comparison.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Sized

from snowplow_tracker.typing import FORM_NODE_NAMES, FORM_TYPES

_CONTRACTS_ENABLED = True

_UNNAMED = "Unnamed parameter"


def disable_contracts() -> None:
    """Turn off every argument check of this module (process-wide)."""
    global _CONTRACTS_ENABLED
    _CONTRACTS_ENABLED = False


def enable_contracts() -> None:
    """Turn the argument checks of this module back on (process-wide)."""
    global _CONTRACTS_ENABLED
    _CONTRACTS_ENABLED = True


def contracts_enabled() -> bool:
    """Tell whether the argument checks are on.

    Returns:
        True unless :func:`disable_contracts` was called last.
    """
    return _CONTRACTS_ENABLED


def greater_than(value: float, compared_to: float, *, name: str = _UNNAMED) -> None:
    """Check that ``value > compared_to``.

    Args:
        value: The number to check.
        compared_to: The exclusive lower bound.
        name: Parameter name used in the error message.

    Raises:
        ValueError: If the value is not greater than the bound.
        TypeError: If the value cannot be compared with a number.
    """
    if not _CONTRACTS_ENABLED:
        return
    try:
        ok = value > compared_to
    except TypeError:
        raise TypeError(f"{name} must be a number, not {type(value).__name__}.") from None
    if not ok:
        raise ValueError(f"{name} must be greater than {compared_to}.")


def non_empty(seq: Sized, *, name: str = _UNNAMED) -> None:
    """Check that a sized collection has at least one element.

    Args:
        seq: The collection to check.
        name: Parameter name used in the error message.

    Raises:
        ValueError: If the collection is empty.
        TypeError: If the argument has no length.
    """
    if not _CONTRACTS_ENABLED:
        return
    try:
        size = len(seq)
    except TypeError:
        raise TypeError(f"{name} must be a collection, not {type(seq).__name__}.") from None
    if size == 0:
        raise ValueError(f"{name} is empty.")


def non_empty_string(s: Any, *, name: str = _UNNAMED) -> None:
    """Check that the argument is a non-empty string.

    Args:
        s: The value to check.
        name: Parameter name used in the error message.

    Raises:
        ValueError: If the value is not a string, or is an empty string.
    """
    if _CONTRACTS_ENABLED and (not isinstance(s, str) or not s):
        raise ValueError(f"{name} is empty.")


def one_of(value: Any, supported: Collection[Any], *, name: str = _UNNAMED) -> None:
    """Check that the value is one of the supported values.

    Args:
        value: The value to check.
        supported: The allowed values.
        name: Parameter name used in the error message.

    Raises:
        ValueError: If the value is not in ``supported``.
    """
    if not _CONTRACTS_ENABLED:
        return
    try:
        ok = value in supported
    except TypeError:  # unhashable value tested against a set
        ok = False
    if not ok:
        raise ValueError(f"{name} is not supported.")


def satisfies(value: Any, check: Callable[[Any], bool], *, name: str = _UNNAMED) -> None:
    """Check that ``check(value)`` is truthy.

    Args:
        value: The value to check.
        check: A predicate.
        name: Parameter name used in the error message.

    Raises:
        ValueError: If the predicate returns a falsy value.
    """
    if _CONTRACTS_ENABLED and not check(value):
        raise ValueError(f"{name} is not allowed.")


def form_element(element: Any, *, name: str = "element") -> None:
    """Check one element of ``track_form_submit`` (see :func:`_check_form_element`).

    Args:
        element: The element dict.
        name: Parameter name used in the error message.

    Raises:
        ValueError: If the element is malformed.
    """
    satisfies(element, _check_form_element, name=name)


def _check_form_element(element: Any) -> bool:
    """Tell whether ``element`` describes a form field.

    A valid element is a dict with the keys ``name``, ``value`` and ``nodeName``, whose
    ``nodeName`` is one of ``FORM_NODE_NAMES`` and whose optional ``type`` is one of
    ``FORM_TYPES`` (case-sensitive).

    Args:
        element: The candidate element.

    Returns:
        True when the element is well formed.
    """
    if not isinstance(element, dict):
        return False
    if "name" not in element or "value" not in element or "nodeName" not in element:
        return False
    try:
        if element["nodeName"] not in FORM_NODE_NAMES:
            return False
        return "type" not in element or element["type"] in FORM_TYPES
    except TypeError:  # unhashable nodeName or type
        return False
