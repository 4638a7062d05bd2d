"""The customers domain's face: the verbs and reads other code may call on customers.

Everything here is implemented in the domain's private modules, one per concept:
profiles (reading them), identities (resolution, and refusing erased people's), merges,
signup, consent (with the outbound contact gate), preferences, the customer 360
(``profile_view``), the domain's part of privacy requests (``privacy``) and bulk loads
(``import_batch`` for records, ``file_import`` for CRM files).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.customers.audiences import (
    CustomerIds,
    active_audience,
    any_of,
    as_customer_ids,
    consent_audience,
    near_audience,
    nearest_store_audience,
    preferred_store_audience,
    rfm_audience,
    trait_audience,
)
from rapport.customers.consent import (
    GATE_PURPOSES,
    SERVICE,
    ConsentState,
    consent_counts,
    consent_cursor_of,
    consent_history,
    consent_state,
    contactable,
    get_consents,
    has_consent,
    may_contact,
    set_consent,
)
from rapport.customers.file_import import PRESETS as CUSTOMER_FILE_PRESETS
from rapport.customers.file_import import (
    consent_choice,
    consent_choices_hint,
    customer_number_refusal,
    import_consent_source,
    import_customers_file,
)
from rapport.customers.identities import (
    IDENTIFY_ATTEMPTS,
    add_identity,
    erased_kinds,
    erased_values,
    find_customer,
    get_identities,
    identify_customer,
    resolve_identities,
)
from rapport.customers.import_batch import ImportedCustomer, import_customers
from rapport.customers.listing import search_audience
from rapport.customers.merges import MergeStep, merge_customers, merge_history, merge_step
from rapport.customers.models import CONSENT_PURPOSES, Customer, Preference, PrivacyRequest
from rapport.customers.preferences import birthdays_on, get_preferences, set_preferences
from rapport.customers.privacy import (
    PRIVACY_TABLES,
    erase_customer_data,
    export_customer_data,
    forget_erased_details,
    privacy_requests,
    privacy_subject,
    record_privacy_request,
)
from rapport.customers.profile_view import (
    customer_profile,
    get_timeline,
    get_traits,
    refresh_rfm_boundaries,
    rfm_boundaries,
)
from rapport.customers.profiles import (
    PROFILE_FIELDS,
    count_customers,
    customer_ids_by_external_id,
    erased_among,
    find_customer_by_external_id,
    get_customer,
    lock_profiles,
    merged_ids,
    recent_customers,
    require_customer,
    search_customers,
)
from rapport.customers.references import (
    CUSTOMER_REF_DESCRIPTION,
    CUSTOMER_REF_MAX_LENGTH,
    CustomerRefPath,
    CustomerRefQuery,
    active_customer_sql,
    find_customer_ref,
    resolve_customer_ref,
    resolve_optional_customer_ref,
    was_erased,
)
from rapport.customers.signup import create_customer
from rapport.platform.formatting import day

__all__ = [
    "CONSENT_PURPOSES",
    "CUSTOMER_FILE_PRESETS",
    "CUSTOMER_REF_DESCRIPTION",
    "CUSTOMER_REF_MAX_LENGTH",
    "GATE_PURPOSES",
    "IDENTIFY_ATTEMPTS",
    "PRIVACY_TABLES",
    "PROFILE_FIELDS",
    "SERVICE",
    "ConsentState",
    "Customer",
    "CustomerIds",
    "CustomerRefPath",
    "CustomerRefQuery",
    "ImportedCustomer",
    "MergeStep",
    "Preference",
    "PrivacyRequest",
    "active_audience",
    "active_customer_sql",
    "add_identity",
    "any_of",
    "as_customer_ids",
    "birthdays_on",
    "consent_audience",
    "consent_choice",
    "consent_choices_hint",
    "consent_counts",
    "consent_cursor_of",
    "consent_history",
    "consent_state",
    "contactable",
    "count_customers",
    "create_customer",
    "customer_ids_by_external_id",
    "customer_number_refusal",
    "customer_profile",
    "erase_customer_data",
    "erased_among",
    "erased_kinds",
    "erased_values",
    "export_customer_data",
    "find_customer",
    "find_customer_by_external_id",
    "find_customer_ref",
    "forget_erased_details",
    "get_consents",
    "get_customer",
    "get_identities",
    "get_preferences",
    "get_timeline",
    "get_traits",
    "gone_notice",
    "has_consent",
    "identify_customer",
    "import_consent_source",
    "import_customers",
    "import_customers_file",
    "lock_profiles",
    "may_contact",
    "merge_customers",
    "merge_history",
    "merge_step",
    "merged_ids",
    "near_audience",
    "nearest_store_audience",
    "preferred_store_audience",
    "privacy_requests",
    "privacy_subject",
    "recent_customers",
    "record_privacy_request",
    "refresh_rfm_boundaries",
    "require_customer",
    "resolve_customer_ref",
    "resolve_identities",
    "resolve_optional_customer_ref",
    "rfm_audience",
    "rfm_boundaries",
    "search_audience",
    "search_customers",
    "set_consent",
    "set_preferences",
    "trait_audience",
    "was_erased",
]


def gone_notice(db: Session, customer_id: str) -> str | None:
    """What an admin page of a customer Rapport no longer holds says (the customers domain's
    ``customers/gone.html`` shows it, 404): "Customer X was erased on <day>; nothing personal
    is kept." or "No customer has the id X."; None for an active customer (a merged id
    followed to the customer it was merged into)."""
    customer = get_customer(db, customer_id=customer_id)
    if customer is not None and customer.status == "active":
        return None
    if customer is not None and customer.status == "erased":
        when = f" on {day(customer.erased_at)}" if customer.erased_at is not None else ""
        return f"Customer {customer_id} was erased{when}; nothing personal is kept."
    return f"No customer has the id {customer_id}."
