"""Self-describing JSON: a JSON value paired with the Iglu URI of its schema."""

from __future__ import annotations

import json
from typing import Any, Dict, Union

from snowplow_tracker.contracts import non_empty_string
from snowplow_tracker.typing import PayloadDict, PayloadDictList


class SelfDescribingJson:
    """A JSON object or array together with the Iglu schema URI that describes it.

    Used for self-describing events and for context entities. Subclasses may override
    :meth:`to_json` to compute the data lazily.

    Args:
        schema: Iglu URI, e.g. ``"iglu:com.acme/event/jsonschema/1-0-0"``.
        data: The JSON-serialisable data (a dict, or a list of dicts).

    Attributes:
        data: The data, as given; may be replaced.
    """

    def __init__(self, schema: str, data: Union[PayloadDict, PayloadDictList]) -> None:
        if type(self) is SelfDescribingJson and type(schema) is str and schema:
            self._schema = schema  # what the setter does with a valid schema, without its call
        else:
            self.schema = schema  # a subclass's own ``schema`` property, or the check
        self.data = data

    @property
    def schema(self) -> str:
        """The Iglu schema URI (a non-empty string)."""
        return self._schema

    @schema.setter
    def schema(self, value: str) -> None:
        non_empty_string(value, name="schema")
        self._schema = value

    def to_json(self) -> Dict[str, Any]:
        """Return the ``{"schema": ..., "data": ...}`` form.

        Returns:
            A new dict with the schema first and the data second.
        """
        return {"schema": self.schema, "data": self.data}

    def to_string(self) -> str:
        """Serialise :meth:`to_json` with the default :func:`json.dumps` settings.

        Returns:
            The JSON text (ASCII-escaped, default separators).
        """
        return json.dumps(self.to_json())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schema={self.schema!r}, data={self.data!r})"
