"""Rendering a campaign's message for one recipient: the template for the channel and the
customer's locale, filled in a Jinja2 sandbox with what Rapport knows about the customer.

Templates see:

- ``customer.first_name`` (``"there"`` when unknown), ``customer.last_name``,
  ``customer.locale``, and ``first_name`` as a shortcut;
- ``points`` (available balance) and ``tier`` (tier name), from loyalty;
- ``recommendations``: up to four products (``sku``, ``name``, ``category``, ``price_minor``)
  for the ``email`` placement, only for customers with ``personalization`` consent (else an
  empty list);
- ``occasion``: the values the producer attached to the delivery (order id, survey link …),
  also available by name at the top level; a path on this installation it attached as
  ``<name>_path`` (a survey's signed ``/s/<token>``) is also there as ``<name>_url``, under
  ``RAPPORT_PUBLIC_BASE_URL`` as it stands at render time (:func:`with_links`), so a message
  queued before the setting changed carries the new host;
- ``unsubscribe_url``: a signed link to the public page that withdraws the consent the
  message is sent under (:func:`consent_purpose`; empty for staff messages and for service
  messages no consent governs, such as a late-delivery notice or apology points); previews
  and test sends get :func:`sample_unsubscribe_url` instead, a link that changes nothing.

Names a template uses that are none of these are refused when the template is saved
(:func:`validate_template`) and make the delivery fail, with the name, at send time. Email
bodies are HTML and autoescaped; subjects, webhook and inbox bodies are plain text. Loyalty and
recommendation lookups run only when the template uses them; the dispatcher loads a batch's
points and tiers in bulk (:meth:`Renderer.prefetch`), so a batch costs two queries whatever its
size, not one per recipient.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, Signer
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, CampaignTemplate, WebhookEndpoint
from rapport.customers import service as customers
from rapport.loyalty import service as loyalty
from rapport.platform.errors import InvalidInput, NotFound
from rapport.platform.settings import Settings, get_settings
from rapport.recommend import service as recommend

FALLBACK_NAME = "there"
RECOMMENDATIONS = 4
KNOWN_NAMES = frozenset(
    {"customer", "first_name", "points", "tier", "recommendations", "occasion", "unsubscribe_url"}
)
_UNSUBSCRIBE_SALT = "rapport.campaigns.unsubscribe"
# The marketing consent each channel's messages need (a webhook endpoint names its own).
CHANNEL_PURPOSES = {"email": "marketing_email", "inbox": "marketing_push"}
# The service messages a consent governs, by system campaign key: a survey invitation goes only
# to customers holding the survey's consent (always ``marketing_email``: docs/feedback.md), so
# withdrawing it stops survey invitations. Other service messages (a late-delivery notice,
# apology points, the retailer's own service campaigns) go whatever the customer's marketing
# consent: an unsubscribe link would not stop them, so they carry none.
SERVICE_CONSENTS = {"feedback.survey_invitation": "marketing_email"}
# The token of the sample link previews and test sends carry: its page says so and changes
# nothing (a real token is "<customer id>.<purpose>.<signature>", never this).
SAMPLE_TOKEN = "sample"


class TemplateError(Exception):
    """A template could not be rendered (a name it uses is unknown, a sandbox violation)."""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str
    unsubscribe_url: str
    # The plain-text alternative of an HTML email body ('' for other channels).
    text: str = ""


@dataclass(frozen=True)
class CustomerFacts:
    """What rendering needs of a customer, loaded in bulk by the sender."""

    customer_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    locale: str
    time_zone: str | None


def load_customers(db: Session, customer_ids: Iterable[str]) -> dict[str, CustomerFacts]:
    """The facts rendering and gating need for ``customer_ids``, in one query per 1,000."""
    wanted = sorted(set(customer_ids))
    found: dict[str, CustomerFacts] = {}
    table = customers.Customer
    for start in range(0, len(wanted), 1000):
        for row in db.execute(
            select(
                table.customer_id,
                table.first_name,
                table.last_name,
                table.email,
                table.phone,
                table.locale,
                table.time_zone,
            ).where(table.customer_id.in_(wanted[start : start + 1000]))
        ):
            found[row.customer_id] = CustomerFacts(*row)
    return found


# ---------------------------------------------------------------------- the sandbox

_html_environment = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_text_environment = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


def _environment(channel: str, part: str) -> SandboxedEnvironment:
    return _html_environment if channel == "email" and part == "body" else _text_environment


def validate_template(
    subject: str, body: str, *, channel: str = "email", context_names: Iterable[str] = ()
) -> None:
    """Refuse a template that does not parse, or uses a name templates do not get (see the
    module's list; ``context_names`` adds the occasion's values a producer always attaches).
    Raises InvalidInput naming the field ('subject' or 'body')."""
    allowed = KNOWN_NAMES | set(context_names)
    for field, source in (("subject", subject), ("body", body)):
        environment = _environment(channel, field)
        try:
            parsed = environment.parse(source)
        except TemplateSyntaxError as error:
            raise InvalidInput(
                f"The {field} does not parse: {error.message} (line {error.lineno})", field=field
            ) from error
        unknown = sorted(meta.find_undeclared_variables(parsed) - allowed)
        if unknown:
            raise InvalidInput(
                f"The {field} uses {', '.join(unknown)}, which templates do not get; use "
                f"{', '.join(sorted(KNOWN_NAMES))} or occasion.<name>",
                field=field,
            )
    if not body.strip():
        raise InvalidInput("The body is empty", field="body")


class _Compiled:
    """A template pair compiled once, with the names it uses (to skip unneeded lookups)."""

    def __init__(self, template: CampaignTemplate) -> None:
        self.channel = template.channel
        subject_env = _environment(template.channel, "subject")
        body_env = _environment(template.channel, "body")
        try:
            self.subject = subject_env.from_string(template.subject)
            self.body = body_env.from_string(template.body)
            self.names = meta.find_undeclared_variables(
                subject_env.parse(template.subject)
            ) | meta.find_undeclared_variables(body_env.parse(template.body))
        except TemplateSyntaxError as error:
            raise TemplateError(f"template {template.id}: {error.message}") from error


# Keyed by the template's text, so an edited template is compiled afresh.
_compiled: dict[tuple[str, str, str], _Compiled] = {}


def _compile(template: CampaignTemplate) -> _Compiled:
    key = (template.channel, template.subject, template.body)
    cached = _compiled.get(key)
    if cached is None:
        if len(_compiled) > 512:
            _compiled.clear()
        cached = _compiled[key] = _Compiled(template)
    return cached


# ---------------------------------------------------------------------- unsubscribe links


def unsubscribe_secret(settings: Settings | None = None) -> str:
    return (settings or get_settings()).session_secret()


@lru_cache(maxsize=8)
def _unsubscribe_signer(secret: str) -> Signer:
    # A key of its own (the salt), derived once: signing is then one HMAC per message.
    key = hashlib.sha256(_UNSUBSCRIBE_SALT.encode() + secret.encode()).digest()
    return Signer(key, key_derivation="none", digest_method=hashlib.sha256)


def unsubscribe_token(customer_id: str, purpose: str, *, secret: str) -> str:
    """``<customer id>.<purpose>.<signature>``: URL-safe, checked without a database read."""
    return _unsubscribe_signer(secret).sign(f"{customer_id}.{purpose}").decode()


def read_unsubscribe_token(token: str, *, secret: str) -> tuple[str, str] | None:
    """The (customer, purpose) a token was signed for, None when forged or malformed."""
    try:
        value = _unsubscribe_signer(secret).unsign(token).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    customer_id, _, purpose = value.rpartition(".")
    if not customer_id or purpose not in customers.CONSENT_PURPOSES:
        return None
    return customer_id, purpose


def consent_purpose(campaign: Campaign, endpoint: WebhookEndpoint | None = None) -> str | None:
    """The consent a campaign's messages go out under, which their unsubscribe link withdraws:
    a marketing campaign's channel consent; a service message's only where a consent governs
    it (:data:`SERVICE_CONSENTS`). None (no link, no List-Unsubscribe) for staff messages and
    other service messages, which withdrawing a consent would not stop."""
    if campaign.purpose == "service":
        return SERVICE_CONSENTS.get(campaign.key or "")
    if campaign.purpose != "marketing":
        return None
    if campaign.channel == "webhook":
        return endpoint.consent_purpose if endpoint is not None else "marketing_push"
    return CHANNEL_PURPOSES[campaign.channel]


def _page_url(token: str, settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}/u/{token}"


# The paths on this installation Rapport's own producers put in an occasion, each with the
# address it becomes: a survey invitation's signed ``/s/<token>``, a CX alert's admin page.
# Only these become links: any other ``*_path`` (a tracked event's property a triggered
# campaign copies, a shop's own value) stays text, so no sender can put a link in a message.
LINK_PATHS = {"survey_path": "survey_url", "admin_path": "admin_url"}


def with_links(occasion: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """``occasion``'s values with each path of :data:`LINK_PATHS` (a path on this
    installation, starting with ``/``) also as its ``<name>_url`` under ``settings``'
    ``public_base_url``: a delivery keeps the path and its address is built when the message
    is rendered, so one queued before ``RAPPORT_PUBLIC_BASE_URL`` changed carries the new
    host. A ``<name>_url`` stored with the delivery (messages queued before) stays as it is."""
    values = dict(occasion)
    for name, link in LINK_PATHS.items():
        value = occasion.get(name)
        if isinstance(value, str) and value.startswith("/"):
            values.setdefault(link, f"{settings.public_base_url.rstrip('/')}{value}")
    return values


def unsubscribe_url(customer_id: str, purpose: str, *, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return _page_url(
        unsubscribe_token(customer_id, purpose, secret=unsubscribe_secret(settings)), settings
    )


def sample_unsubscribe_url(settings: Settings | None = None) -> str:
    """The link previews and test sends show where a customer's message has theirs: its page
    says it is a sample and changes nothing (a staff member's click must not unsubscribe the
    customer the test was rendered for)."""
    return _page_url(SAMPLE_TOKEN, settings or get_settings())


# ---------------------------------------------------------------------- rendering


class Renderer:
    """Renders one campaign's messages: templates read and compiled once, then one call per
    recipient. ``render`` raises TemplateError with the reason."""

    def __init__(
        self,
        db: Session,
        campaign: Campaign,
        *,
        channel: str | None = None,
        endpoint: WebhookEndpoint | None = None,
        settings: Settings | None = None,
        sample_links: bool = False,
    ) -> None:
        """``sample_links``: messages carry :func:`sample_unsubscribe_url` rather than the
        customer's own link (previews, test sends)."""
        self.db = db
        self.campaign = campaign
        self.channel = channel or campaign.channel
        self.settings = settings or get_settings()
        self.secret = unsubscribe_secret(self.settings)
        self.purpose = consent_purpose(campaign, endpoint)
        self.sample_link = sample_unsubscribe_url(self.settings) if sample_links else ""
        rows = list(
            db.scalars(
                select(CampaignTemplate)
                .where(CampaignTemplate.campaign_id == campaign.id)
                .order_by(CampaignTemplate.id)
            )
        )
        for_channel = [row for row in rows if row.channel == self.channel]
        self.templates = for_channel or rows
        # Loyalty facts loaded in bulk for a batch's recipients (``prefetch``); a customer
        # missing here is read one at a time (previews, test sends).
        self._points: dict[str, int] = {}
        self._tiers: dict[str, str] = {}

    def names(self) -> set[str]:
        """Every name this campaign's templates (any locale) use."""
        used: set[str] = set()
        for template in self.templates:
            try:
                used |= _compile(template).names
            except TemplateError:
                continue  # reported per message by ``render``
        return used

    def prefetch(self, customer_ids: Iterable[str]) -> None:
        """Load, in one query per 1,000, the points and tiers of ``customer_ids`` when the
        templates show them: a batch then renders without a query per recipient."""
        wanted = set(customer_ids)
        if not wanted:
            return
        used = self.names()
        if "points" in used:
            self._points.update(loyalty.balances(self.db, customer_ids=wanted))
        if "tier" in used:
            self._tiers.update(loyalty.tier_names(self.db, customer_ids=wanted))

    def _template(self, locale: str | None) -> _Compiled:
        if not self.templates:
            raise TemplateError(f"campaign {self.campaign.id} has no template")
        by_locale = {row.locale: row for row in self.templates}
        wanted = locale or ""
        chosen = (
            by_locale.get(wanted)
            or by_locale.get(wanted.split("-")[0])
            or next((row for row in self.templates if row.locale.split("-")[0] == wanted[:2]), None)
            or self.templates[0]
        )
        return _compile(chosen)

    def render(
        self,
        customer: CustomerFacts | None,
        occasion: Mapping[str, Any],
        *,
        locale: str | None = None,
    ) -> RenderedMessage:
        compiled = self._template(locale or (customer.locale if customer else None))
        link = ""
        if customer is not None and self.purpose is not None:
            link = self.sample_link or _page_url(
                unsubscribe_token(customer.customer_id, self.purpose, secret=self.secret),
                self.settings,
            )
        values = self._values(compiled.names, customer, occasion, link)
        try:
            subject = compiled.subject.render(values).strip()
            body = compiled.body.render(values)
        except UndefinedError as error:
            raise TemplateError(f"template: {error.message}") from error
        except SecurityError as error:
            raise TemplateError(f"template refused by the sandbox: {error}") from error
        text = _html_to_text(body) if compiled.channel == "email" else ""
        return RenderedMessage(subject=subject, body=body, unsubscribe_url=link, text=text)

    def _values(
        self,
        names: set[str],
        customer: CustomerFacts | None,
        occasion: Mapping[str, Any],
        link: str,
    ) -> dict[str, Any]:
        first = (customer.first_name if customer else None) or FALLBACK_NAME
        occasion = with_links(occasion, self.settings)
        values: dict[str, Any] = dict(occasion)
        values.update(
            occasion=occasion,
            first_name=first,
            customer={
                "first_name": first,
                "last_name": (customer.last_name if customer else None) or "",
                "locale": customer.locale if customer else "en",
            },
            unsubscribe_url=link,
            points=0,
            tier="",
            recommendations=[],
        )
        if customer is None:
            return values
        customer_id = customer.customer_id
        if "points" in names:
            points = self._points.get(customer_id)
            if points is None:
                points = loyalty.balance(self.db, customer_id=customer_id)
            values["points"] = points
        if "tier" in names:
            tier = self._tiers.get(customer_id)
            if tier is None:
                tier = loyalty.member_tier(self.db, customer_id=customer_id).tier_name
            values["tier"] = tier
        if "recommendations" in names:
            values["recommendations"] = self._recommendations(customer.customer_id)
        return values

    def _recommendations(self, customer_id: str) -> list[dict[str, Any]]:
        if not customers.has_consent(self.db, customer_id=customer_id, purpose="personalization"):
            return []
        answer = recommend.recommend(
            self.db,
            request=recommend.Request(
                placement="email", customer_id=customer_id, limit=RECOMMENDATIONS
            ),
            data_dir=self.settings.data_dir,
        )
        if not answer.personalized:
            return []
        return [
            {
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "price_minor": item.price_minor,
            }
            for item in answer.items
        ]


def render_message(
    db: Session,
    *,
    campaign: Campaign,
    customer_id: str | None,
    context: dict[str, Any],
    channel: str | None = None,
    locale: str | None = None,
) -> RenderedMessage:
    """The message ``campaign`` would send to ``customer_id`` (None: no customer, as for staff
    messages) with the occasion's ``context``; for previews and test sends, so its unsubscribe
    link is the inert sample (:func:`sample_unsubscribe_url`), never the customer's own. Raises
    NotFound for an unknown customer and InvalidInput (field 'template') when the template
    cannot render."""
    customer = None
    if customer_id is not None:
        customer = load_customers(db, [customer_id]).get(customer_id)
        if customer is None:
            raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    endpoint = (
        db.get(WebhookEndpoint, campaign.webhook_endpoint_id)
        if campaign.webhook_endpoint_id is not None
        else None
    )
    renderer = Renderer(db, campaign, channel=channel, endpoint=endpoint, sample_links=True)
    try:
        return renderer.render(customer, context, locale=locale)
    except TemplateError as error:
        raise InvalidInput(str(error), field="template") from error


_HIDDEN = re.compile(r"<(style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_LINK = re.compile(
    r"""<a\b[^>]*?href\s*=\s*["']([^"']*)["'][^>]*>(.*?)</a\s*>""", re.IGNORECASE | re.DOTALL
)
_BREAK = re.compile(r"<(?:br|/?p|/?div|/?li|/?tr|/?h[1-6])\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")


def _html_to_text(body: str) -> str:
    """A plain-text alternative of an HTML body (bodies without tags pass through): a link
    is its text followed by its address, block ends become line breaks. Regular expressions
    rather than an HTML parser: this runs once per email."""
    if "<" not in body:
        return html.unescape(body)
    addresses: list[str] = []

    def mark(match: re.Match[str]) -> str:
        # A placeholder, not "<address>" yet: the tag stripping below would take it for a tag.
        addresses.append(html.unescape(match.group(1)))
        return f"{match.group(2)}\x00{len(addresses) - 1}\x00"

    text = _LINK.sub(mark, _HIDDEN.sub("", body))
    text = html.unescape(_TAG.sub("", _BREAK.sub("\n", text)))
    text = _PLACEHOLDER.sub(lambda match: f" <{addresses[int(match.group(1))]}>", text)
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
