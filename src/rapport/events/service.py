"""The events domain's face: the verbs and reads other code may call on the event log.

Commands append their domain's typed events inside their own transaction (``appending``);
tracking events are de-duplicated by ``event_id`` and committed before the API answers
(``tracking_store``); erased people's identities go on the suppression list
(``suppression``); an event's coordinates are stored only with its person's consent to
``location``, and no browsing (:func:`is_behaviour`) of a person who refused ``analytics``,
which the customers domain answers through :func:`location_consent_from` (``location``,
``behaviour``). Processors, registered with :func:`processor`, read the log in order
(``processors``) and receive :data:`LoggedEvent` records, which the log's verbs (``log``)
assign, claim, reassign and pseudonymise. ``privacy`` is the domain's part of export and
erasure.
"""

from __future__ import annotations

from rapport.events.appending import append_event, log_event, log_event_parameters, log_event_sql
from rapport.events.audiences import did_event_audience
from rapport.events.behaviour import ANALYTICS_PURPOSE, is_behaviour
from rapport.events.ingest import PUBLIC_SOURCES, from_public_key
from rapport.events.location import (
    LocationChoice,
    LocationConsent,
    TrackedPerson,
    coordinates,
    location_consent_from,
    without_coordinate_traits,
)
from rapport.events.log import (
    Scrubber,
    assign_customer,
    claim_anonymous_events,
    count_events,
    customer_events,
    customer_timeline,
    event_ids_at,
    events_after,
    get_event,
    head_position,
    pseudonymise_customer_events,
    reassign_customer_events,
)
from rapport.events.models import Event
from rapport.events.privacy import (
    PRIVACY_TABLES,
    erase_customer_data,
    erase_dead_letters,
    export_customer_data,
    sweep_digests,
    sweep_erased_contacts,
)
from rapport.events.processors import (
    HeldEventView,
    by_person,
    count_held_behind,
    held_events,
    lock_processor_cursors,
    processor,
    processor_lag,
    registered_processors,
    run_processors,
)
from rapport.events.suppression import suppress_identities, suppressed
from rapport.events.tracking_store import (
    MAX_GROUP,
    GroupCommit,
    Ingested,
    NewEvent,
    Outcome,
    Refusal,
    Status,
    ingest_event,
    ingest_event_now,
    ingest_events,
    ingest_grouped,
)

__all__ = [
    "ANALYTICS_PURPOSE",
    "MAX_GROUP",
    "PRIVACY_TABLES",
    "PUBLIC_SOURCES",
    "GroupCommit",
    "HeldEventView",
    "Ingested",
    "LocationChoice",
    "LocationConsent",
    "LoggedEvent",
    "NewEvent",
    "Outcome",
    "Refusal",
    "Scrubber",
    "Status",
    "TrackedPerson",
    "append_event",
    "assign_customer",
    "by_person",
    "claim_anonymous_events",
    "coordinates",
    "count_events",
    "count_held_behind",
    "customer_events",
    "customer_timeline",
    "erase_customer_data",
    "erase_dead_letters",
    "event_ids_at",
    "events_after",
    "export_customer_data",
    "from_public_key",
    "get_event",
    "head_position",
    "held_events",
    "ingest_event",
    "ingest_event_now",
    "ingest_events",
    "ingest_grouped",
    "is_behaviour",
    "location_consent_from",
    "lock_processor_cursors",
    "log_event",
    "log_event_parameters",
    "log_event_sql",
    "processor",
    "processor_lag",
    "pseudonymise_customer_events",
    "reassign_customer_events",
    "registered_processors",
    "run_processors",
    "suppress_identities",
    "suppressed",
    "sweep_digests",
    "sweep_erased_contacts",
    "without_coordinate_traits",
]

# One record of the log as processors' handlers receive it (read its fields; the log's own
# verbs change it).
LoggedEvent = Event

# --- audiences: customer ids as SELECTs, for campaigns' segments ---
__all__ += ["did_event_audience"]
