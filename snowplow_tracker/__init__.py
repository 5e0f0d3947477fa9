"""Snowplow event tracker for Python, drop-in compatible with snowplow-tracker 1.1.0.

Importing the package configures nothing: it only adds a ``logging.NullHandler`` to the
``snowplow_tracker`` logger, starts no thread and leaves logging levels alone.
"""

import logging as _logging

from snowplow_tracker import _version as _version
from snowplow_tracker import constants as constants
from snowplow_tracker import contracts as contracts
from snowplow_tracker import emitter_configuration as emitter_configuration
from snowplow_tracker import emitters as emitters
from snowplow_tracker import event_store as event_store
from snowplow_tracker import events as events
from snowplow_tracker import payload as payload
from snowplow_tracker import self_describing_json as self_describing_json
from snowplow_tracker import snowplow as snowplow
from snowplow_tracker import subject as subject
from snowplow_tracker import tracker as tracker
from snowplow_tracker import tracker_configuration as tracker_configuration
from snowplow_tracker import typing as typing
from snowplow_tracker._version import __version__
from snowplow_tracker.contracts import disable_contracts, enable_contracts
from snowplow_tracker.emitter_configuration import EmitterConfiguration
from snowplow_tracker.emitters import AsyncEmitter, Emitter, logger
from snowplow_tracker.event_store import EventStore
from snowplow_tracker.events import (
    Event,
    PagePing,
    PageView,
    ScreenView,
    SelfDescribing,
    StructuredEvent,
)
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.snowplow import Snowplow
from snowplow_tracker.subject import Subject
from snowplow_tracker.tracker import Tracker
from snowplow_tracker.tracker_configuration import TrackerConfiguration

__all__ = [
    "AsyncEmitter",
    "Emitter",
    "EmitterConfiguration",
    "Event",
    "EventStore",
    "PagePing",
    "PageView",
    "ScreenView",
    "SelfDescribing",
    "SelfDescribingJson",
    "Snowplow",
    "StructuredEvent",
    "Subject",
    "Tracker",
    "TrackerConfiguration",
    "__version__",
    "disable_contracts",
    "enable_contracts",
    "logger",
]

_package_logger = _logging.getLogger("snowplow_tracker")
if not any(isinstance(h, _logging.NullHandler) for h in _package_logger.handlers):
    _package_logger.addHandler(_logging.NullHandler())
del _package_logger
