"""Identity: one customer across channels. The identity graph (profiles, identifiers,
links), deterministic stitching with guard rails, unmerge, the golden record, customer
records, search and the customer view.

Public face of the domain; other packages import only from here.
"""

from trayecto.identity._golden import RULE_BY_ATTRIBUTE, TRUST
from trayecto.identity._records import (
    RECORD_FIELDS,
    RecordImportReport,
    import_customer_records,
    parse_record_mapping,
)
from trayecto.identity._rules import RULES, IdRule, IdType, normalize
from trayecto.identity._service import (
    CONSUMER,
    CustomerSummary,
    CustomerView,
    EventRef,
    Merge,
    event_refs,
    export_identity_rows,
    get_customer,
    last_processed_event,
    process_touches,
    search_customers,
    unmerge,
)
from trayecto.identity._stitch import Touch

__all__ = [
    "CONSUMER",
    "RECORD_FIELDS",
    "RULES",
    "RULE_BY_ATTRIBUTE",
    "TRUST",
    "CustomerSummary",
    "CustomerView",
    "EventRef",
    "IdRule",
    "IdType",
    "Merge",
    "RecordImportReport",
    "Touch",
    "event_refs",
    "export_identity_rows",
    "get_customer",
    "import_customer_records",
    "last_processed_event",
    "normalize",
    "parse_record_mapping",
    "process_touches",
    "search_customers",
    "unmerge",
]
