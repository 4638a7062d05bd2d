"""Admin pages for recommendations: preview any customer's recommendations with their
explanations, edit merchandising rules on a form (every setting, validated inline, with a
sample customer's recommendations before and after the change), follow the offline metrics
of each trained version, queue a training run, and the customer 360's recommendations panel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    CustomerPanel,
    FormFields,
    NavItem,
    add_template_dir,
    redirect_saying,
    render,
)
from rapport.platform.charts import Chart, Series
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, Problem, pinpointed
from rapport.platform.paging import PageParams
from rapport.platform.settings import AppSettings
from rapport.recommend import service
from rapport.recommend.algorithms import SEASON
from rapport.recommend.models import PLACEMENTS, RULE_ACTIONS, RULE_ATTRIBUTES
from rapport.recommend.schemas import RuleIn, rule_problems

add_template_dir(FilePath(__file__).parent / "templates")

NAV = [
    NavItem("Recommendations", "/admin/recommendations", "Recommendations"),
    NavItem("Merchandising rules", "/admin/recommendations/rules", "Recommendations"),
]
CUSTOMER_PANELS = [
    CustomerPanel("Recommendations", "/admin/recommendations/customers/{customer_id}/panel", 50)
]
router = APIRouter(prefix="/admin/recommendations", include_in_schema=False)


def _metrics_chart(versions: list[Any]) -> Chart:
    """Recall@20 of the served blend and of its best part alone on each version's validation
    window, per protocol, oldest version first."""
    ordered = list(reversed(versions))
    figures = [service.measured(v) for v in ordered]
    series = []
    for protocol, colours in (
        ("repeat", ("#2f6fdf", "#8fb3f5")),
        ("discover", ("#00a86b", "#8ad9b8")),
    ):
        series.append(
            Series(
                f"Served, {service.PROTOCOL_LABELS[protocol]}",
                [f[protocol].served if protocol in f else None for f in figures],
                color=colours[0],
            )
        )
        series.append(
            Series(
                f"Best part alone, {service.PROTOCOL_LABELS[protocol]}",
                [f[protocol].best_part_recall if protocol in f else None for f in figures],
                color=colours[1],
            )
        )
    return Chart(
        id="metrics-chart",
        kind="line",
        labels=[v.version for v in ordered],
        series=series,
        unit="share",
        label_heading="Version",
        title="Recall@20 per model version",
    )


def _parts_chart(version: Any | None) -> Chart | None:
    """The serving version's comparison: each part alone and the blend served, per protocol
    (Recall@20 on its validation window)."""
    figures = service.measured(version) if version is not None else {}
    if not any(f.parts for f in figures.values()):
        return None
    labels = [service.PART_LABELS[p] for p in service.PART_LABELS] + ["Blend served"]
    series = []
    for protocol, colour in (("repeat", "#2f6fdf"), ("discover", "#00a86b")):
        f = figures.get(protocol)
        if f is None:
            continue
        series.append(
            Series(
                service.PROTOCOL_LABELS[protocol].capitalize(),
                [f.parts.get(p) for p in service.PART_LABELS] + [f.served],
                color=colour,
            )
        )
    return Chart(
        id="parts-chart",
        kind="bar",
        labels=labels,
        series=series,
        unit="share",
        label_heading="Scored",
        title="Recall@20 of each part alone and of the blend served",
    )


# Not a part: the power of the in-season factor that multiplies the weighted parts.
SEASON_LABEL = "In-season boost (power)"


def _weights(version: Any | None) -> list[dict[str, Any]]:
    """The weights the serving version chose, one row per part, and the in-season power
    (versions trained before it existed show none)."""
    figures = service.measured(version) if version is not None else {}
    return [
        {
            "part": label,
            **{
                p: figures[p].weights.get(part) if p in figures else None
                for p in service.PROTOCOL_LABELS
            },
        }
        for part, label in {**service.PART_LABELS, SEASON: SEASON_LABEL}.items()
    ]


def _page(
    request: Request,
    db: DbSession,
    user: Any,
    settings: AppSettings,
    *,
    preview: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    versions = service.list_versions(db, limit=20)
    active = service.active_version(settings.data_dir)
    serving = next((v for v in versions if v.version == active), None)
    return render(
        request,
        "recommend/overview.html",
        {
            "user": user,
            "versions": versions,
            "active": active,
            "serving": serving,
            "measured": service.measured(serving) if serving is not None else {},
            "unmeasured": service.unmeasured_reason(serving) if serving is not None else None,
            "any_measured": any(
                f.served is not None for v in versions for f in service.measured(v).values()
            ),
            "version_figures": {v.version: service.measured(v) for v in versions},
            "weights": _weights(serving),
            "verdict_customers": service.VERDICT_CUSTOMERS,
            "parts_chart": _parts_chart(serving),
            "protocols": service.PROTOCOL_LABELS,
            "part_label": service.part_label,
            "rule_counts": service.count_rules(db),
            "changes": service.rule_changes(db, limit=15),
            "placements": PLACEMENTS,
            "actions": RULE_ACTIONS,
            "attributes": RULE_ATTRIBUTES,
            "preview": preview,
            "errors": errors or [],
            "chart": _metrics_chart(versions),
        },
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse)
def overview(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
) -> HTMLResponse:
    return _page(request, db, user, settings)


@router.get("/preview", response_class=HTMLResponse)
def preview(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
    placement: str = "home",
    customer_id: str = "",
    item_id: str = "",
    cart: str = "",
    store_id: str = "",
    device: str = "",
) -> HTMLResponse:
    """What a customer would see in a placement, and why (nothing is written)."""
    asked: dict[str, Any] = {
        "placement": placement,
        "customer_id": customer_id,
        "item_id": item_id,
        "cart": cart,
        "store_id": store_id,
        "device": device,
    }
    refusal = _preview_refusal(placement, item_id=item_id, cart=cart)
    if refusal is not None:
        asked["error_field"], asked["error"] = refusal
        return _page(request, db, user, settings, preview=asked, status_code=422)
    try:
        answer = service.recommend(
            db,
            request=service.Request(
                placement=placement,
                customer_id=customer_id.strip() or None,
                item_id=item_id.strip() or None,
                cart=tuple(s for s in cart.replace(",", " ").split() if s),
                store_id=store_id.strip() or None,
                device=device.strip() or None,
            ),
            data_dir=settings.data_dir,
        )
    except Problem as problem:
        # The API's words name its parameters; the form's name its fields.
        label = PREVIEW_LABELS.get(problem.field or "")
        asked["error_field"] = problem.field if label else None
        asked["error"] = f"{label}: {problem.detail}" if label else problem.detail
        return _page(request, db, user, settings, preview=asked, status_code=problem.status)
    asked["answer"] = answer
    return _page(request, db, user, settings, preview=asked)


# The preview form's fields by the API parameter each one is.
PREVIEW_LABELS = {
    "placement": "Placement",
    "customer_id": "Customer id",
    "item_id": "Product (SKU)",
    "cart": "Cart SKUs",
    "store_id": "Store",
    "device": "Device",
}


def _preview_refusal(placement: str, *, item_id: str, cart: str) -> tuple[str, str] | None:
    """(field, message) when the preview form lacks what its placement needs, in the form's
    terms; None when it can be asked."""
    if placement not in PLACEMENTS:
        return "placement", f"Choose a placement: {placement!r} is none of them"
    if placement in ("product_similar", "product_complements") and not item_id.strip():
        shows = "similar to" if placement == "product_similar" else "that go with"
        return "item_id", f"Enter the product's SKU: this placement shows items {shows} one product"
    if item_id.strip() and placement not in ("product_similar", "product_complements"):
        return "item_id", "Leave the product empty: this placement shows no items about one product"
    if placement == "cart" and not cart.replace(",", " ").strip():
        return "cart", "Enter at least one SKU: this placement shows items that go with a cart"
    return None


RULE_FIELDS = service.RULE_SETTINGS
# Each field's label on the rule form, which starts its message (as every admin form's does).
RULE_LABELS = {
    "name": "Name",
    "action": "Action",
    "placement": "Placement",
    "segment": "Segment",
    "sku": "SKU",
    "attribute": "Attribute",
    "value": "Equal to",
    "position": "Position",
    "factor": "Factor",
    "starts_at": "From",
    "ends_at": "Until",
    "active": "On",
}


def _moment(value: str) -> datetime | None:
    # <input type="datetime-local"> sends local wall time without a zone; the admin pages work
    # in UTC, as the rules list shows.
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value.strip() else None


def _field_of(loc: tuple[Any, ...]) -> str:
    """The form field a validation error is about; what names none is about the action."""
    return str(loc[0]) if loc and str(loc[0]) in RULE_FIELDS else "action"


def _stored_text(rule: Any) -> dict[str, str]:
    """Each stored setting as text that reads back exactly: the form shows some of them
    rounded (a moment to the minute, a factor to six digits)."""
    exact: dict[str, str] = {}
    for name in RULE_FIELDS:
        value = getattr(rule, name)
        if isinstance(value, datetime):
            exact[name] = value.astimezone(UTC).isoformat()
        elif isinstance(value, bool):
            exact[name] = "true" if value else "false"
        elif isinstance(value, float):
            exact[name] = repr(value)
        elif value is not None:
            exact[name] = str(value)
    return exact


def _parse_rule(
    fields: dict[str, str],
    stored: Any | None = None,
    *,
    check: Callable[[dict[str, str]], list[tuple[str, str]]] | None = None,
) -> tuple[RuleIn | None, dict[str, str]]:
    """The rule a form describes, or the message for each field that is wrong. Editing
    ``stored``, a field left as the form showed it (or that the form did not carry) keeps its
    exact stored value: the form never changes a setting the merchandiser did not touch.
    ``check`` finds what the settings name that does not exist (``service.target_problems``):
    its messages come with the rule's own, every one at once."""
    errors: dict[str, str] = {}
    text: dict[str, str] = {}
    shown = _form_values(stored) if stored is not None else {}
    exact = _stored_text(stored) if stored is not None else {}
    for name in RULE_FIELDS:
        value = fields.get(name, "").strip()
        if stored is not None and (name not in fields or value == shown[name]):
            if name in exact:
                text[name] = exact[name]
            continue
        if name in ("starts_at", "ends_at") and value:
            try:
                moment = _moment(value)
            except ValueError:
                errors[name] = "enter a date and time"
                continue
            value = moment.isoformat() if moment else ""
        if name == "active":
            value = "true" if fields.get("active") == "true" else "false"
        if value:
            text[name] = value
    if (
        text.get("starts_at")
        and text.get("ends_at")
        and datetime.fromisoformat(text["ends_at"]) <= datetime.fromisoformat(text["starts_at"])
    ):
        errors["ends_at"] = "must be after From"
        del text["ends_at"]
    try:
        # A form sends text: read it as text (API bodies must send numbers as numbers).
        rule = RuleIn.model_validate_strings(text)
    except ValidationError as failure:
        for error in failure.errors(include_url=False):
            loc, message = pinpointed(error)
            errors.setdefault(_field_of(loc), message)
        # The rule refuses the first setting its action does not take or lacks: the form says
        # every one at once, each beside its field.
        for name, message in rule_problems(text):
            errors.setdefault(name, message)
        rule = None
    for name, message in check(text) if check is not None else ():
        errors.setdefault(name, message)
    labelled = {
        name: f"{RULE_LABELS.get(name, name)}: {message}" for name, message in errors.items()
    }
    return (rule, {}) if rule is not None and not errors else (None, labelled)


def _sample(
    db: DbSession, settings: AppSettings, customer_id: str, placement: str
) -> dict[str, Any] | None:
    """A sample customer's recommendations in a placement, as the API serves them now."""
    if not customer_id.strip():
        return None
    if placement not in PLACEMENTS or placement in ("product_similar", "product_complements"):
        placement = "home"
    if placement == "cart":
        placement = "home"
    try:
        answer = service.recommend(
            db,
            request=service.Request(placement=placement, customer_id=customer_id.strip()),
            data_dir=settings.data_dir,
        )
    except Problem as problem:
        return {"error": problem.detail, "placement": placement}
    return {"answer": answer, "placement": placement}


def _form_values(rule: Any) -> dict[str, str]:
    if rule is None:
        return {"active": "true"}
    values = {}
    for name in RULE_FIELDS:
        value = getattr(rule, name)
        if isinstance(value, datetime):
            values[name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        elif isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, float):
            values[name] = f"{value:g}"
        else:
            values[name] = "" if value is None else str(value)
    return values


def _rule_page(
    request: Request,
    user: Any,
    *,
    rule_id: int | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    sample_customer: str = "",
    sample_placement: str = "home",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "recommend/rule.html",
        {
            "user": user,
            "rule_id": rule_id,
            "values": values,
            "errors": errors or {},
            "placements": PLACEMENTS,
            "actions": RULE_ACTIONS,
            "attributes": RULE_ATTRIBUTES,
            "sample_customer": sample_customer,
            "sample_placement": sample_placement,
            "before": before,
            "after": after,
            "message": message,
        },
        status_code=status_code,
    )


@router.get("/rules", response_class=HTMLResponse)
def rules_page(
    request: Request, db: DbSession, user: CurrentAdmin, paging_request: PageParams
) -> HTMLResponse:
    """The merchandising rules a page at a time, each with its edit link and what it holds
    that a rule saved now is refused for, and the recent changes."""
    total, on = service.count_rules(db)
    paging = paging_request.of(total)
    rules = service.list_rules(db, offset=paging.offset, limit=paging.per_page)
    return render(
        request,
        "recommend/rules.html",
        {
            "user": user,
            "rules": rules,
            "problems": {rule.id: service.stored_rule_problems(db, rule) for rule in rules},
            "paging": paging,
            "on": on,
            "max_on": service.MAX_ACTIVE_RULES,
            "changes": service.rule_changes(db, limit=15),
        },
    )


@router.get("/rules/new", response_class=HTMLResponse)
def new_rule_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
    customer_id: str = "",
    placement: str = "home",
) -> HTMLResponse:
    return _rule_page(
        request,
        user,
        rule_id=None,
        values=_form_values(None),
        sample_customer=customer_id,
        sample_placement=placement,
        before=_sample(db, settings, customer_id, placement),
    )


@router.get("/rules/{rule_id}", response_class=HTMLResponse)
def edit_rule_page(
    request: Request,
    rule_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
    customer_id: str = "",
    placement: str = "home",
) -> HTMLResponse:
    rule = service.get_rule(db, rule_id=rule_id)
    return _rule_page(
        request,
        user,
        rule_id=rule_id,
        values=_form_values(rule),
        sample_customer=customer_id,
        sample_placement=placement,
        before=_sample(db, settings, customer_id, placement),
    )


def _save(
    request: Request,
    db: DbSession,
    user: Any,
    settings: AppSettings,
    fields: dict[str, str],
    rule_id: int | None,
) -> HTMLResponse:
    sample_customer = fields.get("sample_customer", "")[:100]
    sample_placement = fields.get("sample_placement", "home")[:30]
    before = _sample(db, settings, sample_customer, sample_placement)
    stored = service.get_rule(db, rule_id=rule_id) if rule_id is not None else None
    rule, errors = _parse_rule(fields, stored, check=lambda text: service.target_problems(db, text))
    saved = None
    if rule is not None:
        try:
            if stored is None:
                saved = service.create_rule(db, rule=rule, by=user.email)
                message = f"Rule {saved.id} ({saved.name}) added"
            else:
                was = {name: getattr(stored, name) for name in RULE_FIELDS}
                saved = service.update_rule(db, rule_id=stored.id, rule=rule, by=user.email)
                same = was == {name: getattr(saved, name) for name in RULE_FIELDS}
                done = "nothing changed" if same else "saved"
                message = f"Rule {saved.id} ({saved.name}) {done}"
        except InvalidInput as refused:  # a product or segment that does not exist
            field = refused.field or "action"
            said = refused.detail.removeprefix(f"{field}: ")
            errors = {field: f"{RULE_LABELS.get(field, field)}: {said}"}
    if saved is None:
        return _rule_page(
            request,
            user,
            rule_id=rule_id,
            values={name: fields.get(name, "") for name in RULE_FIELDS},
            errors=errors,
            sample_customer=sample_customer,
            sample_placement=sample_placement,
            before=before,
            status_code=422,
        )
    return _rule_page(
        request,
        user,
        rule_id=saved.id,
        values=_form_values(saved),
        sample_customer=sample_customer,
        sample_placement=sample_placement,
        before=before,
        after=_sample(db, settings, sample_customer, sample_placement),
        message=message,
    )


@router.post("/rules", response_class=HTMLResponse, dependencies=[CsrfChecked])
def add_rule(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
    fields: FormFields,
) -> HTMLResponse:
    return _save(request, db, user, settings, fields, None)


@router.post("/rules/{rule_id}", response_class=HTMLResponse, dependencies=[CsrfChecked])
def change_rule(
    request: Request,
    rule_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
    fields: FormFields,
) -> HTMLResponse:
    service.get_rule(db, rule_id=rule_id)  # 404 before anything else
    return _save(request, db, user, settings, fields, rule_id)


@router.post("/rules/{rule_id}/delete", dependencies=[CsrfChecked])
def remove_rule(
    request: Request,
    rule_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    db: DbSession,
    user: CurrentAdmin,
) -> RedirectResponse:
    service.delete_rule(db, rule_id=rule_id, by=user.email)
    return redirect_saying(request, "/admin/recommendations/rules", f"Rule {rule_id} deleted")


@router.post("/train", dependencies=[CsrfChecked])
def train(request: Request, db: DbSession, user: CurrentAdmin) -> RedirectResponse:
    job = service.queue_training(db, by=user.email)
    return redirect_saying(request, "/admin/recommendations", f"Training queued (job {job.id})")


@router.get("/customers/{customer_id}/panel", response_class=HTMLResponse)
def customer_panel(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
) -> HTMLResponse:
    """The customer 360's recommendations panel (an htmx fragment): the home placement as the
    API serves it to this customer, each item with its reason. Without their consent to
    personalisation nothing personal is shown, as the API shows nothing personal."""
    try:
        answer = service.recommend(
            db,
            request=service.Request(placement="home", customer_id=customer_id, limit=8),
            data_dir=settings.data_dir,
        )
        error = ""
    except Problem as problem:
        answer, error = None, problem.detail
    return render(
        request,
        "recommend/customer_panel.html",
        {"customer_id": customer_id, "answer": answer, "error": error},
    )
