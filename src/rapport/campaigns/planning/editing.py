"""Campaigns as the retailer edits them: create, update, read and list, each setting checked
(kind, purpose, channel and its webhook endpoint, segment, control group, conversion window,
the trigger of a triggered campaign, the store, radius and categories of a local invitation);
the templates per channel and locale; and the system campaigns other parts of Rapport send
through (``ensure_system_campaign``: found by key, created once, never overwriting what the
retailer edited)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.rendering import validate_template
from rapport.campaigns.models import (
    CAMPAIGN_KINDS,
    CAMPAIGN_PURPOSES,
    CHANNELS,
    Campaign,
    CampaignTemplate,
    Segment,
    WebhookEndpoint,
)
from rapport.catalog import service as catalog
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound, pinpointed
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.schemas import StrictModel

# Kinds and purposes the retailer creates; transactional campaigns and staff messages are
# Rapport's own producers' (``ensure_system_campaign``).
EDITABLE_KINDS = ("one_off", "scheduled", "triggered")
EDITABLE_PURPOSES = ("marketing", "service")
MAX_RADIUS_KM = 500.0
MAX_WITHIN_MINUTES = 7 * 24 * 60
LOCALE_PATTERN = r"^[a-z]{2}(-[A-Z]{2})?$"
# Settings that decide who is in the audience and how they are split: fixed once launched,
# so that results compare what was actually sent.
FIXED_ONCE_LAUNCHED = (
    "kind",
    "channel",
    "webhook_endpoint_id",
    "segment_id",
    "store_id",
    "radius_km",
    "categories",
    "control_percent",
)
# A failed launch sent nothing: its settings are mended before it is launched again.
EDITABLE_STATUSES = ("draft", "scheduled", "paused", "active", "failed")
# What may change whatever the status (a longer window measures a sent campaign longer).
ALWAYS_EDITABLE = ("name", "conversion_days")

# Why a launched one-off or scheduled campaign's messages no longer change (``set_template``
# refuses them, 409, from the admin and the API alike; the editor shows them read-only).
MESSAGES_FIXED = (
    "This campaign has been launched: its messages are what its customers were sent, so they "
    "no longer change (results compare what was sent); write a new campaign for a new message"
)

# Whole numbers JSON carries exactly (and every database stores).
SafeInt = Annotated[int, Field(ge=-(2**53), le=2**53)]
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]
FilterValue = Annotated[str, Field(max_length=200)] | SafeInt | float | bool
# Names in a delivery's context (and so in its template): the triggering event's properties,
# when the message stops being worth sending, the store of a local invitation.
EVENT_CONTEXT = "event"
EXPIRES_AT = "expires_at"
STORE_CONTEXT = "store"


class TriggerSpec(BaseModel):
    """When a triggered campaign fires. ``event_type`` names the tracked event
    (``venue_event``); ``filters`` are property values the event must carry (``{"name":
    "Cup final"}``). With ``radius_km`` the audience is the customers with location consent
    near the event's point (its ``latitude``/``longitude``); without it, the event's own
    customer. Messages must go out within ``within_minutes`` of the event, or not at all."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_.]*$")
    filters: dict[Annotated[str, Field(min_length=1, max_length=60)], FilterValue] = Field(
        default_factory=dict, max_length=10
    )
    radius_km: float | None = Field(default=None, gt=0, le=MAX_RADIUS_KM)
    within_minutes: int = Field(default=120, ge=1, le=MAX_WITHIN_MINUTES)


def parse_trigger(raw: Mapping[str, Any]) -> TriggerSpec:
    """``raw`` as a :class:`TriggerSpec`, or :class:`InvalidInput` naming the field
    (``trigger.radius_km``)."""
    try:
        return TriggerSpec.model_validate(dict(raw))
    except ValidationError as error:
        loc, message = pinpointed(error.errors()[0])
        where = ".".join(str(part) for part in loc)
        raise InvalidInput(
            f"trigger.{where}: {message}" if where else f"trigger: {message}",
            field=f"trigger.{where}" if where else "trigger",
        ) from None


class CampaignSettings(StrictModel):
    """A campaign's settings as the API and the editor send them (create: all of them, with
    defaults; update: only those given)."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["one_off", "scheduled", "triggered"] = "one_off"
    purpose: Literal["marketing", "service"] = "marketing"
    channel: Literal["email", "webhook", "inbox"] = "email"
    webhook_endpoint_id: RowId | None = None
    segment_id: RowId | None = None
    scheduled_at: datetime | None = None
    trigger: dict[str, Any] = Field(
        default_factory=dict,
        description="Triggered campaigns: event_type, filters, radius_km, within_minutes",
    )
    store_id: str | None = Field(default=None, max_length=64)
    radius_km: float | None = Field(default=None, gt=0, le=MAX_RADIUS_KM)
    categories: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=20
    )

    @field_validator("trigger")
    @classmethod
    def _trigger_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Checked here too, so that a request body holds nothing a trigger cannot (the
        # cross-setting rules are checked when the campaign is saved).
        return parse_trigger(value).model_dump() if value else value

    control_percent: float = Field(default=0.0, ge=0, le=90)
    conversion_days: int = Field(default=7, ge=1, le=90)


@dataclass(frozen=True)
class CampaignPage:
    campaigns: list[Campaign]
    total: int


def _check(db: Session, values: dict[str, Any]) -> None:
    """Every rule across settings; ``values`` is the campaign as it would be saved."""
    if values["kind"] not in CAMPAIGN_KINDS:
        raise InvalidInput(f"Unknown kind {values['kind']!r}", field="kind")
    if values["purpose"] not in CAMPAIGN_PURPOSES:
        raise InvalidInput(f"Unknown purpose {values['purpose']!r}", field="purpose")
    if values["channel"] not in CHANNELS:
        raise InvalidInput(f"Unknown channel {values['channel']!r}", field="channel")
    control = values["control_percent"]
    if not 0 <= control <= 90:
        raise InvalidInput("The control group is 0 to 90 percent", field="control_percent")
    if not 1 <= values["conversion_days"] <= 90:
        raise InvalidInput("The conversion window is 1 to 90 days", field="conversion_days")
    if values["channel"] == "webhook":
        endpoint_id = values.get("webhook_endpoint_id")
        if endpoint_id is None:
            raise InvalidInput(
                "A webhook campaign names the endpoint it sends to", field="webhook_endpoint_id"
            )
        if db.get(WebhookEndpoint, endpoint_id) is None:
            raise InvalidInput(f"No webhook endpoint {endpoint_id}", field="webhook_endpoint_id")
    segment_id = values.get("segment_id")
    if segment_id is not None and db.get(Segment, segment_id) is None:
        raise InvalidInput(f"No segment {segment_id}", field="segment_id")
    if values["kind"] == "triggered":
        if not values.get("trigger"):
            raise InvalidInput(
                "A triggered campaign names the event that triggers it", field="trigger"
            )
        values["trigger"] = parse_trigger(values["trigger"]).model_dump()
    elif values.get("trigger"):
        raise InvalidInput("Only triggered campaigns have a trigger", field="trigger")
    _check_local_invitation(db, values)


def _check_local_invitation(db: Session, values: dict[str, Any]) -> None:
    store_id = values.get("store_id")
    categories = [c.strip() for c in values.get("categories") or [] if c and c.strip()]
    values["categories"] = list(dict.fromkeys(categories))
    if store_id is None:
        if values.get("radius_km") is not None and values["kind"] != "triggered":
            raise InvalidInput("A radius needs the store it is around", field="store_id")
        if values["categories"]:
            raise InvalidInput("Categories need the store to invite to", field="store_id")
        return
    if values["kind"] == "triggered":
        raise InvalidInput(
            "A local invitation is sent once (one-off or scheduled), not triggered",
            field="store_id",
        )
    store = catalog.get_store(db, store_id=store_id)
    if store is None:
        raise InvalidInput(f"No store {store_id!r}", field="store_id")
    if store.latitude is None or store.longitude is None:
        raise InvalidInput(
            f"Store {store_id!r} has no coordinates, so nobody is near it", field="store_id"
        )
    radius = values.get("radius_km")
    if radius is None or not 0 < radius <= MAX_RADIUS_KM:
        raise InvalidInput(
            f"A local invitation reaches customers within 0 to {MAX_RADIUS_KM:g} km",
            field="radius_km",
        )
    if not values["categories"]:
        raise InvalidInput(
            "A local invitation names the categories the invited customers bought from",
            field="categories",
        )
    for index, category in enumerate(values["categories"]):
        if len(category) > 300:
            raise InvalidInput(
                "A category path is at most 300 characters", field=f"categories[{index}]"
            )


def validated_settings(raw: Mapping[str, Any]) -> CampaignSettings:
    """``raw`` as :class:`CampaignSettings`, or :class:`InvalidInput` naming the field."""
    try:
        return CampaignSettings.model_validate(dict(raw))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInput(
            f"{where}: {first['msg']}" if where else str(first["msg"]), field=where
        ) from None


def _as_dict(campaign: Campaign) -> dict[str, Any]:
    return {name: getattr(campaign, name) for name in CampaignSettings.model_fields}


def create_campaign(
    db: Session,
    *,
    settings: CampaignSettings,
    created_by: str = "",
    before_commit: BeforeCommit | None = None,
) -> Campaign:
    """A new draft campaign with ``settings``, checked; commits."""
    values = settings.model_dump()
    _check(db, values)
    now = clock.now()
    campaign = Campaign(
        **values, status="draft", created_by=created_by[:200], created_at=now, updated_at=now
    )
    db.add(campaign)
    db.flush()
    if before_commit is not None:
        before_commit(db, campaign)
    db.commit()
    return campaign


def update_campaign(
    db: Session,
    *,
    campaign_id: int,
    changes: Mapping[str, Any],
    before_commit: BeforeCommit | None = None,
) -> Campaign:
    """Change the named settings only (what is not named stays as it is), checked together
    with the rest; commits. Who is in the audience and how they are split cannot change once
    the campaign has been launched."""
    campaign = _locked(db, campaign_id)
    unknown = set(changes) - set(CampaignSettings.model_fields)
    if unknown:
        raise InvalidInput(f"Unknown setting {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    if campaign.key is not None and set(changes) - {"name", "control_percent", "conversion_days"}:
        raise InvalidInput(
            "A system campaign's audience and channel are Rapport's own; only its name, "
            "control group and conversion window change",
            field=sorted(set(changes) - {"name", "control_percent", "conversion_days"})[0],
        )
    if campaign.status not in EDITABLE_STATUSES and campaign.key is None:
        frozen = sorted(
            name
            for name in set(changes) - set(ALWAYS_EDITABLE)
            if changes[name] != getattr(campaign, name)
        )
        if frozen:
            raise InvalidInput(
                f"A {campaign.status} campaign keeps its settings; only its name and "
                "conversion window change",
                field=frozen[0],
            )
    changes = dict(changes)
    if changes.get("kind", "triggered") != "triggered" and "trigger" not in changes:
        changes["trigger"] = {}  # no longer triggered: its trigger goes with the kind
    current = _as_dict(campaign)
    if campaign.key is not None:
        # A system campaign's kind and purpose are outside what the retailer may pick; only
        # the named changes are checked.
        current_as_editable = {**current, "kind": "one_off", "purpose": "marketing"}
    else:
        current_as_editable = current
    merged = validated_settings({**current_as_editable, **dict(changes)}).model_dump()
    values = {name: merged[name] for name in changes}
    # A system campaign sends per occasion: a new control share applies from the next one.
    if campaign.started_at is not None and campaign.key is None:
        for name in FIXED_ONCE_LAUNCHED:
            if name in values and values[name] != current[name]:
                raise InvalidInput(
                    f"{name} cannot change once the campaign has been launched", field=name
                )
    if campaign.key is None:
        _check(db, {**current, **values})
        checked = {**current, **values}
        values = {name: checked[name] for name in values}
    for name, value in values.items():
        setattr(campaign, name, value)
    campaign.updated_at = clock.now()
    if before_commit is not None:
        before_commit(db, campaign)
    db.commit()
    return campaign


def _locked(db: Session, campaign_id: int) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    campaign = db.scalar(query)
    if campaign is None:
        raise NotFound(f"No campaign {campaign_id}")
    return campaign


def get_campaign(db: Session, *, campaign_id: int) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"No campaign {campaign_id}")
    return campaign


def list_campaigns(
    db: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    include_system: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> CampaignPage:
    """Campaigns, newest first, a page at a time (``limit`` at most 200)."""
    limit = max(1, min(limit, 200))
    query = select(Campaign)
    if status is not None:
        query = query.where(Campaign.status == status)
    if kind is not None:
        query = query.where(Campaign.kind == kind)
    if not include_system:
        query = query.where(Campaign.key.is_(None))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(Campaign.id.desc()).offset(max(offset, 0)).limit(limit))
    return CampaignPage(campaigns=list(rows), total=int(total))


def get_templates(db: Session, *, campaign_id: int) -> list[CampaignTemplate]:
    return list(
        db.scalars(
            select(CampaignTemplate)
            .where(CampaignTemplate.campaign_id == campaign_id)
            .order_by(CampaignTemplate.channel, CampaignTemplate.locale)
        )
    )


def occasion_names(campaign: Campaign) -> tuple[str, ...]:
    """The values a campaign's deliveries carry besides what every template gets: the event
    of a triggered campaign, the store of a local invitation."""
    if campaign.kind == "triggered":
        return (EVENT_CONTEXT, EXPIRES_AT)
    if campaign.store_id is not None:
        return (STORE_CONTEXT,)
    return ()


def messages_fixed(campaign: Campaign) -> bool:
    """Whether the campaign's messages are what was sent and no longer change: a one-off or
    scheduled campaign of the retailer's once launched (a failed launch sent nothing).
    Triggered and Rapport's own campaigns keep sending, so their next message may change."""
    return campaign.key is None and campaign.kind != "triggered" and campaign.started_at is not None


def set_template(
    db: Session,
    *,
    campaign_id: int,
    channel: str,
    locale: str,
    subject: str,
    body: str,
    edited: bool = True,
) -> CampaignTemplate:
    """Save the message for ``channel`` in ``locale`` (created or replaced); commits. A
    launched one-off or scheduled campaign's messages are kept as sent (409,
    ``messages_fixed``), a new locale's too."""
    campaign = _locked(db, campaign_id)
    if messages_fixed(campaign):
        raise Conflict(MESSAGES_FIXED, field="body")
    template = _put_template(
        db, campaign=campaign, channel=channel, locale=locale, subject=subject, body=body
    )
    if edited:
        campaign.updated_at = clock.now()
    db.commit()
    return template


def template_problem(db: Session, campaign: Campaign) -> InvalidInput | None:
    """What is wrong with a stored template on the campaign's channel (one saved before
    templates were checked as they are now: ``customer.nosuch``), as :func:`set_template`
    would refuse it, its locale said; None when every one would be saved today. For the
    launch's checks, so such a campaign is not launched to send only dead messages."""
    for template in get_templates(db, campaign_id=campaign.id):
        if template.channel != campaign.channel:
            continue
        try:
            _check_template(db, campaign, template.channel, template.subject, template.body)
        except InvalidInput as problem:
            return InvalidInput(
                f"The {template.channel} message in {template.locale!r}: {problem.detail}",
                field=f"templates.{template.channel}.{template.locale}.{problem.field}",
            )
    return None


def _check_template(db: Session, campaign: Campaign, channel: str, subject: str, body: str) -> None:
    from rapport.campaigns.planning.previews import sample_context  # imports this module
    from rapport.campaigns.producers.messages import occasion_fields  # imports this module

    validate_template(
        subject,
        body,
        channel=channel,
        context_names=occasion_names(campaign),
        sample=sample_context(db, campaign),
        any_names=campaign.key is not None,  # system campaigns' producers attach their own
        # What every delivery carries (a system campaign's producer attaches, a triggered
        # campaign's event): its templates may use that and no more.
        occasion_fields=(
            occasion_fields(campaign.key) if campaign.key is not None else occasion_names(campaign)
        ),
    )


def _put_template(
    db: Session, *, campaign: Campaign, channel: str, locale: str, subject: str, body: str
) -> CampaignTemplate:
    if channel not in CHANNELS:
        raise InvalidInput(f"Unknown channel {channel!r}", field="channel")
    if not re.match(LOCALE_PATTERN, locale):
        raise InvalidInput(
            f"Locale {locale!r} is a language code such as 'en' or 'fr-CA'", field="locale"
        )
    if len(subject) > 300:
        raise InvalidInput("A subject is at most 300 characters", field="subject")
    if not body.strip():
        raise InvalidInput("A message has a body", field="body")
    if len(body) > 100_000:
        raise InvalidInput("A body is at most 100,000 characters", field="body")
    _check_template(db, campaign, channel, subject, body)
    template = db.scalar(
        select(CampaignTemplate).where(
            CampaignTemplate.campaign_id == campaign.id,
            CampaignTemplate.channel == channel,
            CampaignTemplate.locale == locale,
        )
    )
    now = clock.now()
    if template is None:
        template = CampaignTemplate(
            campaign_id=campaign.id,
            channel=channel,
            locale=locale,
            subject=subject,
            body=body,
            updated_at=now,
        )
        db.add(template)
    else:
        template.subject, template.body, template.updated_at = subject, body, now
    db.flush()
    return template


def ensure_system_campaign(
    db: Session,
    *,
    key: str,
    name: str,
    purpose: str,
    channel: str,
    templates: Mapping[tuple[str, str], tuple[str, str]],
    webhook_endpoint_id: int | None = None,
    superseded: Mapping[tuple[str, str], tuple[str, str]] | None = None,
) -> Campaign:
    """The transactional campaign named ``key`` (created on first use, ``active``), with a
    template for each (channel, locale) it lacks. Templates it already has are the
    retailer's to edit and are never overwritten, except one still exactly as ``superseded``
    says Rapport wrote it before (never edited), which becomes today's default. Flushes, does
    not commit: the caller's transaction (a producer's batch) owns it."""
    if purpose not in CAMPAIGN_PURPOSES:
        raise InvalidInput(f"Unknown purpose {purpose!r}", field="purpose")
    if channel not in CHANNELS:
        raise InvalidInput(f"Unknown channel {channel!r}", field="channel")
    campaign = db.scalar(select(Campaign).where(Campaign.key == key))
    if campaign is None:
        now = clock.now()
        try:
            with db.begin_nested():
                campaign = Campaign(
                    key=key,
                    name=name,
                    kind="transactional",
                    purpose=purpose,
                    channel=channel,
                    webhook_endpoint_id=webhook_endpoint_id,
                    status="active",
                    created_by="rapport",
                    created_at=now,
                    updated_at=now,
                    started_at=now,
                )
                db.add(campaign)
        except IntegrityError:
            campaign = None  # another worker created it first
        if campaign is None:
            campaign = db.scalar(select(Campaign).where(Campaign.key == key))
            assert campaign is not None
    stored = {
        (t.channel, t.locale): (t.subject, t.body)
        for t in db.scalars(
            select(CampaignTemplate).where(CampaignTemplate.campaign_id == campaign.id)
        )
    }
    before = superseded or {}
    for (template_channel, locale), (subject, body) in templates.items():
        where = (template_channel, locale)
        if where not in stored or (where in before and stored[where] == before[where]):
            _put_template(
                db,
                campaign=campaign,
                channel=template_channel,
                locale=locale,
                subject=subject,
                body=body,
            )
    return campaign
