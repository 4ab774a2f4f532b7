"""Identity: one customer across channels. The identity graph (profiles, identifiers,
links), deterministic stitching with guard rails, unmerge, the golden record, customer
records, search and the customer view.

Public face of the domain; other packages import only from here.
"""

from trayecto.identity._consent import (
    CHANNELS as CONSENT_CHANNELS,
)
from trayecto.identity._consent import (
    PURPOSES as CONSENT_PURPOSES,
)
from trayecto.identity._consent import get_consents, may_contact, record_consent
from trayecto.identity._golden import RULE_BY_ATTRIBUTE, TRUST
from trayecto.identity._match import MatchReport, run_matching
from trayecto.identity._privacy import ErasurePlan, erase_identity, plan_erasure
from trayecto.identity._records import (
    RECORD_FIELDS,
    RecordImportReport,
    import_customer_records,
    parse_record_mapping,
)
from trayecto.identity._review import (
    Candidate,
    CustomerBrief,
    MatchModel,
    decide_candidate,
    get_candidate,
    latest_model,
    review_queue,
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
from trayecto.identity._stitch import StitchResult, Touch

__all__ = [
    "CONSENT_CHANNELS",
    "CONSENT_PURPOSES",
    "CONSUMER",
    "RECORD_FIELDS",
    "RULES",
    "RULE_BY_ATTRIBUTE",
    "TRUST",
    "Candidate",
    "CustomerBrief",
    "CustomerSummary",
    "CustomerView",
    "ErasurePlan",
    "EventRef",
    "IdRule",
    "IdType",
    "MatchModel",
    "MatchReport",
    "Merge",
    "RecordImportReport",
    "StitchResult",
    "Touch",
    "decide_candidate",
    "erase_identity",
    "event_refs",
    "export_identity_rows",
    "get_candidate",
    "get_consents",
    "get_customer",
    "import_customer_records",
    "last_processed_event",
    "latest_model",
    "may_contact",
    "normalize",
    "parse_record_mapping",
    "plan_erasure",
    "process_touches",
    "record_consent",
    "review_queue",
    "run_matching",
    "search_customers",
    "unmerge",
]
