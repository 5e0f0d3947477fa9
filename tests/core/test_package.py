"""The package surface: re-exports, submodule attributes and import side effects."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import snowplow_tracker

REPO_ROOT = Path(__file__).resolve().parents[2]

ROOT_NAMES = {
    "__version__",
    "Subject",
    "logger",
    "Emitter",
    "AsyncEmitter",
    "SelfDescribingJson",
    "Tracker",
    "EmitterConfiguration",
    "TrackerConfiguration",
    "Snowplow",
    "disable_contracts",
    "enable_contracts",
    "EventStore",
    "Event",
    "PageView",
    "PagePing",
    "SelfDescribing",
    "StructuredEvent",
    "ScreenView",
}

SUBMODULES = [
    "_version",
    "subject",
    "emitters",
    "self_describing_json",
    "tracker",
    "emitter_configuration",
    "tracker_configuration",
    "snowplow",
    "contracts",
    "event_store",
    "events",
    "typing",
    "payload",
    "constants",
]


def test_root_exposes_every_name_of_the_inventory() -> None:
    for name in ROOT_NAMES:
        assert hasattr(snowplow_tracker, name), name
    assert set(snowplow_tracker.__all__) == ROOT_NAMES


def test_root_names_come_from_their_modules() -> None:
    from snowplow_tracker import (
        contracts,
        emitter_configuration,
        emitters,
        event_store,
        events,
        self_describing_json,
        snowplow,
        subject,
        tracker,
        tracker_configuration,
    )

    assert snowplow_tracker.Subject is subject.Subject
    assert snowplow_tracker.Emitter is emitters.Emitter
    assert snowplow_tracker.AsyncEmitter is emitters.AsyncEmitter
    assert snowplow_tracker.SelfDescribingJson is self_describing_json.SelfDescribingJson
    assert snowplow_tracker.Tracker is tracker.Tracker
    assert snowplow_tracker.EmitterConfiguration is emitter_configuration.EmitterConfiguration
    assert snowplow_tracker.TrackerConfiguration is tracker_configuration.TrackerConfiguration
    assert snowplow_tracker.Snowplow is snowplow.Snowplow
    assert snowplow_tracker.disable_contracts is contracts.disable_contracts
    assert snowplow_tracker.enable_contracts is contracts.enable_contracts
    assert snowplow_tracker.EventStore is event_store.EventStore
    for name in (
        "Event",
        "PageView",
        "PagePing",
        "SelfDescribing",
        "StructuredEvent",
        "ScreenView",
    ):
        assert getattr(snowplow_tracker, name) is getattr(events, name)


def test_logger_is_the_emitters_logger() -> None:
    assert snowplow_tracker.logger is logging.getLogger("snowplow_tracker.emitters")
    assert isinstance(snowplow_tracker.logger, logging.Logger)


def test_in_memory_event_store_is_not_re_exported() -> None:
    assert not hasattr(snowplow_tracker, "InMemoryEventStore")
    from snowplow_tracker.event_store import InMemoryEventStore  # noqa: F401


def test_every_submodule_is_an_attribute() -> None:
    for name in SUBMODULES:
        module = getattr(snowplow_tracker, name)
        assert module.__name__ == f"snowplow_tracker.{name}"
    from snowplow_tracker import _version, emitters, payload, subject, tracker  # noqa: F401


def test_events_package_submodules() -> None:
    from snowplow_tracker import events

    for name in (
        "event",
        "page_ping",
        "page_view",
        "screen_view",
        "self_describing",
        "structured_event",
    ):
        assert getattr(events, name).__name__ == f"snowplow_tracker.events.{name}"


def test_tracker_module_reexports_constants() -> None:
    from snowplow_tracker import constants, typing
    from snowplow_tracker.tracker import (
        BASE_SCHEMA_PATH,
        DEFAULT_ENCODE_BASE64,
        FORM_NODE_NAMES,
        FORM_TYPES,
        SCHEMA_TAG,
        VERSION,
    )

    assert "py-" + snowplow_tracker._version.__version__ == VERSION
    assert DEFAULT_ENCODE_BASE64 is True
    assert BASE_SCHEMA_PATH == constants.BASE_SCHEMA_PATH
    assert SCHEMA_TAG == "jsonschema"
    assert FORM_NODE_NAMES is typing.FORM_NODE_NAMES
    assert FORM_TYPES is typing.FORM_TYPES


def test_constants_values() -> None:
    from snowplow_tracker import constants
    from snowplow_tracker.self_describing_json import SelfDescribingJson

    assert "py-" + snowplow_tracker.__version__ == constants.VERSION
    assert constants.BASE_SCHEMA_PATH == "iglu:com.snowplowanalytics.snowplow"
    assert constants.MOBILE_SCHEMA_PATH == "iglu:com.snowplowanalytics.mobile"
    assert (
        constants.CONTEXT_SCHEMA == "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
    )
    assert (
        constants.UNSTRUCT_EVENT_SCHEMA
        == "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
    )
    assert constants.ContextArray.__args__ == (SelfDescribingJson,)  # type: ignore[attr-defined]


def test_typing_module_contents() -> None:
    from snowplow_tracker import typing as sp_typing

    assert {"INPUT", "TEXTAREA", "SELECT"} == sp_typing.FORM_NODE_NAMES
    assert len(sp_typing.FORM_TYPES) == 23
    assert {"datetime-local", "week", "text", "submit"} <= sp_typing.FORM_TYPES
    assert {"pc", "tv", "mob", "cnsl", "iot", "web", "srv", "app"} == sp_typing.SUPPORTED_PLATFORMS
    for name in ("input", "flush", "async_flush", "sync_flush"):
        assert callable(getattr(sp_typing.EmitterProtocol, name))
    for alias in (
        "PayloadDict",
        "PayloadDictList",
        "JsonEncoderFunction",
        "FormNodeName",
        "ElementClasses",
        "FormClasses",
        "HttpProtocol",
        "Method",
        "SuccessCallback",
        "FailureCallback",
        "SupportedPlatform",
    ):
        assert hasattr(sp_typing, alias), alias


def test_subject_module_constants() -> None:
    from snowplow_tracker import subject, typing

    assert subject.DEFAULT_PLATFORM == "pc"
    assert subject.SUPPORTED_PLATFORMS is typing.SUPPORTED_PLATFORMS


_PROBE = r"""
import json, logging, sys, threading, warnings
warnings.simplefilter("error")
root = logging.getLogger()
before = {
    "root_handlers": list(root.handlers),
    "root_level": root.level,
    "threads": threading.active_count(),
}
import snowplow_tracker
import snowplow_tracker.snowplow, snowplow_tracker.emitters
loggers = {
    name: logging.getLogger(name).level
    for name in logging.root.manager.loggerDict
    if name.startswith("snowplow_tracker")
}
package_handlers = [type(h).__name__ for h in logging.getLogger("snowplow_tracker").handlers]
print(json.dumps({
    "root_handlers_same": list(root.handlers) == before["root_handlers"] and root.handlers == [],
    "root_level_same": root.level == before["root_level"],
    "threads": threading.active_count() - before["threads"],
    "logger_levels": loggers,
    "package_handlers": package_handlers,
    "collector_imported": any(m.startswith("snowplow_tracker.collector") for m in sys.modules),
}))
"""


def test_import_has_no_side_effects() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["root_handlers_same"] is True
    assert report["root_level_same"] is True
    assert report["threads"] == 0
    assert all(level == logging.NOTSET for level in report["logger_levels"].values()), report
    assert report["package_handlers"] == ["NullHandler"]
    assert report["collector_imported"] is False


def test_reimport_does_not_add_handlers() -> None:
    import importlib

    handlers_before = list(logging.getLogger("snowplow_tracker").handlers)
    importlib.reload(snowplow_tracker)
    assert logging.getLogger("snowplow_tracker").handlers == handlers_before
