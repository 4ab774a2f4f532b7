"""Collect: every interaction from every touchpoint into the append-only event log.

Public face of the domain: the Segment contract checks, the durable group-commit writer,
the bulk importer and the read path. Other packages import only from here.
"""

from trayecto.collect._contracts import (
    MESSAGE_TYPES,
    CheckedBatch,
    InvalidMessage,
    NativeEvent,
    Origin,
    Rejection,
    check_batch,
    check_message,
)
from trayecto.collect._importer import FORMATS, ImportReport, import_events, parse_mapping
from trayecto.collect._offload import (
    IngestPool,
    PreparedBatch,
    malformed_json,
    prepare_batch,
    prepare_payload,
)
from trayecto.collect._privacy import ERASED, anonymise_events
from trayecto.collect._store import (
    SCAN_BUDGET,
    EventFilter,
    EventPage,
    append_events,
    count_events,
    counts_by_channel,
    encode_cursor,
    events_by_id,
    message_ids,
    query_events,
    read_log,
)
from trayecto.collect._writer import EventWriter

__all__ = [
    "ERASED",
    "FORMATS",
    "MESSAGE_TYPES",
    "SCAN_BUDGET",
    "CheckedBatch",
    "EventFilter",
    "EventPage",
    "EventWriter",
    "ImportReport",
    "IngestPool",
    "InvalidMessage",
    "NativeEvent",
    "Origin",
    "PreparedBatch",
    "Rejection",
    "anonymise_events",
    "append_events",
    "check_batch",
    "check_message",
    "count_events",
    "counts_by_channel",
    "encode_cursor",
    "events_by_id",
    "import_events",
    "malformed_json",
    "message_ids",
    "parse_mapping",
    "prepare_batch",
    "prepare_payload",
    "query_events",
    "read_log",
]
