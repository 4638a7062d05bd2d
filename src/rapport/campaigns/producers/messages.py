"""The system campaigns the producers send through, each with its default templates (English,
French, German; email bodies are HTML, autoescaped). ``system_campaign`` finds a campaign by
its key or creates it on first use; templates the retailer edited are never overwritten.

Templates read the occasion's values as ``occasion.<name>``; every name a template uses is
always present in the context the producer attaches (``0`` or ``''`` when it does not apply),
because templates render with undefined names refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient
from rapport.campaigns.models import Campaign
from rapport.campaigns.planning.control import in_control_group
from rapport.campaigns.planning.editing import ensure_system_campaign

Templates = dict[tuple[str, str], tuple[str, str]]

LATE_DELIVERY = "orders.late_delivery"
LATE_DELIVERY_INBOX = "orders.late_delivery.inbox"
PICKUP_READY = "orders.pickup_ready"
PICKUP_NOT_COLLECTED = "orders.pickup_not_collected"
SURVEY_INVITATION = "feedback.survey_invitation"
APOLOGY = "service.apology"
CX_ALERT = "feedback.cx_alert"
CX_ALERT_WEBHOOK = "feedback.cx_alert.webhook"
ANNOUNCEMENT_PREFIX = "loyalty.announcement."


# The languages Rapport writes its messages in, with the locale each one's dates are spelled
# in: a date value (``collect_by_date``) is English, ``<value>_<language>`` each other's.
DATE_LOCALES = {"en": "en_GB", "fr": "fr_FR", "de": "de_DE"}


def dates_in_languages(name: str, text: str, spell: Callable[[date, str], str]) -> dict[str, str]:
    """The ISO day ``text`` as each language's messages write it (``spell``: the day and a
    locale), as ``name`` (English) and ``name_<language>``; the text as it came when it is no
    date."""
    try:
        day: date | None = date.fromisoformat(text)
    except ValueError:
        day = None
    return {
        name if language == "en" else f"{name}_{language}": (
            spell(day, locale) if day is not None else text
        )
        for language, locale in DATE_LOCALES.items()
    }


# The values each producer attaches to its deliveries (its occasion), by system campaign: a
# template of the campaign may use these and no other name (``occasion_fields``: checked when
# it is saved, so an edited template never names a value its messages lack).
LATE_OCCASION = (
    "order_id",
    "promised_delivery",
    "promised_date",
    "promised_date_fr",
    "promised_date_de",
    "reason",
    "apology_points",
    "notice_id",
)
PICKUP_OCCASION = (
    "order_id",
    "store_name",
    "collect_by",
    "collect_by_date",
    "collect_by_date_fr",
    "collect_by_date_de",
    "pickup_code",
    "notice_id",
)
# ``survey_url`` and ``admin_url`` are built from the paths when the message is rendered
# (rendering.with_links).
SURVEY_OCCASION = (
    "invitation_id",
    "survey_id",
    "survey_path",
    "survey_url",
    "expires_on",
    "order_id",
    "stage",
)
APOLOGY_OCCASION = ("points", "order_id", "ticket_id")
CX_ALERT_OCCASION = (
    "kind",
    "scope",
    "scope_value",
    "scope_label",
    "target",
    "score",
    "responses",
    "day",
    "admin_path",
    "admin_url",
)


@dataclass(frozen=True)
class SystemCampaign:
    key: str
    name: str
    purpose: str
    channel: str
    templates: Templates
    occasion: tuple[str, ...]
    # Defaults Rapport shipped before, by (channel, locale): a stored template still exactly
    # so (never edited) is replaced by today's default when the campaign is next used.
    superseded: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


_LATE_EMAIL: Templates = {
    ("email", "en"): (
        "Your order {{ occasion.order_id }} is running late",
        "<p>Hello {{ customer.first_name }},</p>\n"
        "<p>We're sorry: your order {{ occasion.order_id }} will not arrive by "
        "{{ occasion.promised_date }} as promised ({{ occasion.reason }}). We're on it.</p>\n"
        "{% if occasion.apology_points %}<p>To make up for it, we have added "
        "{{ occasion.apology_points }} points to your account.</p>\n{% endif %}",
    ),
    ("email", "fr"): (
        "Votre commande {{ occasion.order_id }} a du retard",
        "<p>Bonjour {{ customer.first_name }},</p>\n"
        "<p>Nous sommes désolés : votre commande {{ occasion.order_id }} n'arrivera pas le "
        "{{ occasion.promised_date_fr }} comme promis. Nous nous en occupons.</p>\n"
        "{% if occasion.apology_points %}<p>Pour nous faire pardonner, nous avons ajouté "
        "{{ occasion.apology_points }} points à votre compte.</p>\n{% endif %}",
    ),
    ("email", "de"): (
        "Ihre Bestellung {{ occasion.order_id }} verspätet sich",
        "<p>Hallo {{ customer.first_name }},</p>\n"
        "<p>Es tut uns leid: Ihre Bestellung {{ occasion.order_id }} kommt nicht wie "
        "versprochen bis {{ occasion.promised_date_de }} an. Wir kümmern uns darum.</p>\n"
        "{% if occasion.apology_points %}<p>Als Entschuldigung haben wir Ihrem Konto "
        "{{ occasion.apology_points }} Punkte gutgeschrieben.</p>\n{% endif %}",
    ),
}

_LATE_INBOX: Templates = {
    ("inbox", "en"): (
        "Your order {{ occasion.order_id }} is running late",
        "We're sorry: your order {{ occasion.order_id }} will not arrive by "
        "{{ occasion.promised_date }} as promised ({{ occasion.reason }}). We're on it."
        "{% if occasion.apology_points %} We have added {{ occasion.apology_points }} points "
        "to your account.{% endif %}",
    ),
}

_PICKUP_READY: Templates = {
    ("email", "en"): (
        "Your order {{ occasion.order_id }} is ready for collection",
        "<p>Hello {{ customer.first_name }},</p>\n"
        "<p>Your order {{ occasion.order_id }} is ready for collection at "
        "{{ occasion.store_name }}. We keep it for you until {{ occasion.collect_by_date }}."
        "</p>\n<p>Bring your pick-up code: {{ occasion.pickup_code }}.</p>\n",
    ),
    ("email", "fr"): (
        "Votre commande {{ occasion.order_id }} vous attend",
        "<p>Bonjour {{ customer.first_name }},</p>\n"
        "<p>Votre commande {{ occasion.order_id }} vous attend à {{ occasion.store_name }}. "
        "Nous la gardons jusqu'au {{ occasion.collect_by_date_fr }}.</p>\n"
        "<p>Votre code de retrait : {{ occasion.pickup_code }}.</p>\n",
    ),
    ("email", "de"): (
        "Ihre Bestellung {{ occasion.order_id }} liegt zur Abholung bereit",
        "<p>Hallo {{ customer.first_name }},</p>\n"
        "<p>Ihre Bestellung {{ occasion.order_id }} liegt in {{ occasion.store_name }} zur "
        "Abholung bereit. Wir halten sie bis {{ occasion.collect_by_date_de }} für Sie zurück."
        "</p>\n"
        "<p>Ihr Abholcode: {{ occasion.pickup_code }}.</p>\n",
    ),
}

_PICKUP_NOT_COLLECTED: Templates = {
    ("email", "en"): (
        "Your order {{ occasion.order_id }} was not collected",
        "<p>Hello {{ customer.first_name }},</p>\n"
        "<p>Your order {{ occasion.order_id }} was not collected at {{ occasion.store_name }} "
        "by {{ occasion.collect_by_date }}, so we have cancelled it and put its items back on "
        "sale. Anything you paid for it is given back.</p>\n",
    ),
    ("email", "fr"): (
        "Votre commande {{ occasion.order_id }} n'a pas été retirée",
        "<p>Bonjour {{ customer.first_name }},</p>\n"
        "<p>Votre commande {{ occasion.order_id }} n'a pas été retirée à "
        "{{ occasion.store_name }} avant le {{ occasion.collect_by_date_fr }} : nous l'avons "
        "annulée "
        "et remis ses articles en vente. Ce que vous avez payé vous est rendu.</p>\n",
    ),
    ("email", "de"): (
        "Ihre Bestellung {{ occasion.order_id }} wurde nicht abgeholt",
        "<p>Hallo {{ customer.first_name }},</p>\n"
        "<p>Ihre Bestellung {{ occasion.order_id }} wurde bis {{ occasion.collect_by_date_de }} "
        "nicht "
        "in {{ occasion.store_name }} abgeholt: Wir haben sie storniert und die Artikel wieder "
        "in den Verkauf gegeben. Was Sie bezahlt haben, erhalten Sie zurück.</p>\n",
    ),
}


def _superseded(templates: Templates, *, now: str, before: str) -> Templates:
    """The defaults as Rapport wrote them before ``before`` became ``now`` in them."""
    return {
        where: (subject.replace(now, before), body.replace(now, before))
        for where, (subject, body) in templates.items()
        if now in subject or now in body
    }


# Until December 2026 the French and German late-delivery and pick-up emails showed the ISO
# date (``occasion.promised_delivery``, ``occasion.collect_by``: "2026-12-14"): a stored one
# still so is today's default again.
_LATE_EMAIL_BEFORE = {
    **_superseded(_LATE_EMAIL, now="promised_date_fr", before="promised_delivery"),
    **_superseded(_LATE_EMAIL, now="promised_date_de", before="promised_delivery"),
}
_PICKUP_READY_BEFORE = {
    **_superseded(_PICKUP_READY, now="collect_by_date_fr", before="collect_by"),
    **_superseded(_PICKUP_READY, now="collect_by_date_de", before="collect_by"),
}
_PICKUP_NOT_COLLECTED_BEFORE = {
    **_superseded(_PICKUP_NOT_COLLECTED, now="collect_by_date_fr", before="collect_by"),
    **_superseded(_PICKUP_NOT_COLLECTED, now="collect_by_date_de", before="collect_by"),
}

_SURVEY: Templates = {
    ("email", "en"): (
        "How did we do? Tell us in one minute",
        "<p>Hello {{ customer.first_name }},</p>\n"
        "<p>{% if occasion.order_id %}How was your order {{ occasion.order_id }}?"
        "{% else %}How was your visit?{% endif %} Your answer helps us do better.</p>\n"
        '<p><a href="{{ occasion.survey_url }}">Answer the survey</a></p>\n'
        "<p>The link works until {{ occasion.expires_on }}.</p>\n",
    ),
    ("email", "fr"): (
        "Votre avis compte : une minute pour nous répondre",
        "<p>Bonjour {{ customer.first_name }},</p>\n"
        "<p>{% if occasion.order_id %}Comment s'est passée votre commande "
        "{{ occasion.order_id }} ?{% else %}Comment s'est passée votre visite ?{% endif %}</p>\n"
        '<p><a href="{{ occasion.survey_url }}">Répondre au questionnaire</a></p>\n'
        "<p>Le lien est valable jusqu'au {{ occasion.expires_on }}.</p>\n",
    ),
    ("email", "de"): (
        "Wie war es? Sagen Sie es uns in einer Minute",
        "<p>Hallo {{ customer.first_name }},</p>\n"
        "<p>{% if occasion.order_id %}Wie war Ihre Bestellung {{ occasion.order_id }}?"
        "{% else %}Wie war Ihr Besuch?{% endif %}</p>\n"
        '<p><a href="{{ occasion.survey_url }}">Zur Umfrage</a></p>\n'
        "<p>Der Link gilt bis {{ occasion.expires_on }}.</p>\n",
    ),
}

_APOLOGY: Templates = {
    ("email", "en"): (
        "Sorry: we've added {{ occasion.points }} points to your account",
        "<p>Hello {{ customer.first_name }},</p>\n"
        "<p>We're sorry{% if occasion.order_id %} about your order {{ occasion.order_id }}"
        "{% endif %}. To make up for it, we have added {{ occasion.points }} points to your "
        "account.</p>\n",
    ),
    ("email", "fr"): (
        "Désolés : nous avons ajouté {{ occasion.points }} points à votre compte",
        "<p>Bonjour {{ customer.first_name }},</p>\n"
        "<p>Nous sommes désolés{% if occasion.order_id %} pour votre commande "
        "{{ occasion.order_id }}{% endif %}. Pour nous faire pardonner, nous avons ajouté "
        "{{ occasion.points }} points à votre compte.</p>\n",
    ),
    ("email", "de"): (
        "Entschuldigung: {{ occasion.points }} Punkte für Sie",
        "<p>Hallo {{ customer.first_name }},</p>\n"
        "<p>Es tut uns leid{% if occasion.order_id %} wegen Ihrer Bestellung "
        "{{ occasion.order_id }}{% endif %}. Als Entschuldigung haben wir Ihrem Konto "
        "{{ occasion.points }} Punkte gutgeschrieben.</p>\n",
    ),
}

_CX_ALERT: Templates = {
    ("email", "en"): (
        "CX alert: {{ occasion.kind|upper }} {{ occasion.score }} is below its target "
        "{{ occasion.target }} ({{ occasion.scope_label }})",
        "<p>The {{ occasion.kind|upper }} score for {{ occasion.scope_label }} is "
        "{{ occasion.score }} over the target's window ({{ occasion.responses }} responses), "
        "below its target of {{ occasion.target }}.</p>\n"
        '<p><a href="{{ occasion.admin_url }}">Open the feedback pages</a></p>\n',
    ),
}

_CX_ALERT_WEBHOOK: Templates = {
    ("webhook", "en"): (
        "CX alert: {{ occasion.kind|upper }} {{ occasion.score }} is below its target "
        "{{ occasion.target }} ({{ occasion.scope_label }})",
        "The {{ occasion.kind|upper }} score for {{ occasion.scope_label }} is "
        "{{ occasion.score }} ({{ occasion.responses }} responses), below its target of "
        "{{ occasion.target }}. {{ occasion.admin_url }}",
    ),
}

SYSTEM_CAMPAIGNS: dict[str, SystemCampaign] = {
    c.key: c
    for c in (
        SystemCampaign(
            LATE_DELIVERY,
            "Late-delivery notice",
            "service",
            "email",
            _LATE_EMAIL,
            LATE_OCCASION,
            _LATE_EMAIL_BEFORE,
        ),
        SystemCampaign(
            LATE_DELIVERY_INBOX,
            "Late-delivery notice (app inbox)",
            "service",
            "inbox",
            _LATE_INBOX,
            LATE_OCCASION,
        ),
        SystemCampaign(
            PICKUP_READY,
            "Ready for collection notice",
            "service",
            "email",
            _PICKUP_READY,
            PICKUP_OCCASION,
            _PICKUP_READY_BEFORE,
        ),
        SystemCampaign(
            PICKUP_NOT_COLLECTED,
            "Not collected notice",
            "service",
            "email",
            _PICKUP_NOT_COLLECTED,
            PICKUP_OCCASION,
            _PICKUP_NOT_COLLECTED_BEFORE,
        ),
        SystemCampaign(
            SURVEY_INVITATION, "Survey invitation", "service", "email", _SURVEY, SURVEY_OCCASION
        ),
        SystemCampaign(APOLOGY, "Apology points", "service", "email", _APOLOGY, APOLOGY_OCCASION),
        SystemCampaign(
            CX_ALERT, "CX-target alert (staff)", "staff", "email", _CX_ALERT, CX_ALERT_OCCASION
        ),
        SystemCampaign(
            CX_ALERT_WEBHOOK,
            "CX-target alert (webhook)",
            "staff",
            "webhook",
            _CX_ALERT_WEBHOOK,
            CX_ALERT_OCCASION,
        ),
    )
}


def occasion_fields(key: str) -> tuple[str, ...] | None:
    """The values the producer of system campaign ``key`` attaches to each delivery, which
    its templates may use; an announcement's none (its message is the operator's text). None
    for a key no producer here sends."""
    if key.startswith(ANNOUNCEMENT_PREFIX):
        return ()
    spec = SYSTEM_CAMPAIGNS.get(key)
    return spec.occasion if spec is not None else None


def system_campaign(db: Session, key: str, *, webhook_endpoint_id: int | None = None) -> Campaign:
    """The system campaign ``key`` (one of :data:`SYSTEM_CAMPAIGNS`), created on first use
    (a webhook one sends to ``webhook_endpoint_id``, kept current when the setting names
    another endpoint)."""
    spec = SYSTEM_CAMPAIGNS[key]
    campaign = ensure_system_campaign(
        db,
        key=spec.key,
        name=spec.name,
        purpose=spec.purpose,
        channel=spec.channel,
        templates=spec.templates,
        webhook_endpoint_id=webhook_endpoint_id,
        superseded=spec.superseded,
    )
    if webhook_endpoint_id is not None and campaign.webhook_endpoint_id != webhook_endpoint_id:
        campaign.webhook_endpoint_id = webhook_endpoint_id
        db.flush()
    return campaign


def with_control_group(campaign: Campaign, recipients: Iterable[Recipient]) -> list[Recipient]:
    """``recipients`` with those the campaign's control group holds out marked ``control``
    (the retailer may give a system campaign a control group; 0% by default). Staff
    recipients are never held out."""
    return [
        replace(r, group="control")
        if r.customer_id and in_control_group(campaign.id, r.customer_id, campaign.control_percent)
        else r
        for r in recipients
    ]
