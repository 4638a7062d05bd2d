"""Admin pages for recommendations: preview any customer's recommendations with their
explanations, manage merchandising rules (with the audit of changes), follow the offline
metrics of each trained version, and queue a training run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, add_template_dir, render
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem
from rapport.platform.settings import AppSettings
from rapport.recommend import service
from rapport.recommend.models import PLACEMENTS, RULE_ACTIONS, RULE_ATTRIBUTES
from rapport.recommend.schemas import RuleIn

add_template_dir(FilePath(__file__).parent / "templates")

NAV = [NavItem("Recommendations", "/admin/recommendations", "Recommendations")]
router = APIRouter(prefix="/admin/recommendations", include_in_schema=False)

CHART_MODELS = {"rapport": "#2f6fdf", "top_frequency": "#d4a017", "popularity": "#8a8a8a"}


def _metrics_chart(versions: list[Any]) -> dict[str, Any]:
    """Recall@20 of each model on each version's held-out window, oldest version first."""
    ordered = list(reversed(versions))
    return {
        "type": "line",
        "data": {
            "labels": [v.version for v in ordered],
            "datasets": [
                {
                    "label": f"{name} Recall@20",
                    "data": [v.metrics.get(name, {}).get("recall@20") for v in ordered],
                    "borderColor": colour,
                    "backgroundColor": colour,
                }
                for name, colour in CHART_MODELS.items()
            ],
        },
        "options": {"scales": {"y": {"beginAtZero": True}}},
    }


def _page(
    request: Request,
    db: DbSession,
    user: Any,
    settings: AppSettings,
    *,
    preview: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    versions = service.list_versions(db, limit=20)
    return render(
        request,
        "recommend/overview.html",
        {
            "user": user,
            "versions": versions,
            "active": service.active_version(settings.data_dir),
            "rules": service.list_rules(db),
            "changes": service.rule_changes(db, limit=15),
            "placements": PLACEMENTS,
            "actions": RULE_ACTIONS,
            "attributes": RULE_ATTRIBUTES,
            "preview": preview,
            "errors": errors or [],
            "message": message,
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
    message: str = "",
) -> HTMLResponse:
    return _page(request, db, user, settings, message=message)


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
    if placement not in PLACEMENTS:
        asked["error"] = f"Unknown placement {placement!r}"
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
        asked["error"] = problem.detail
        return _page(request, db, user, settings, preview=asked, status_code=problem.status)
    asked["answer"] = answer
    return _page(request, db, user, settings, preview=asked)


def _optional(value: str) -> str | None:
    return value.strip() or None


def _moment(value: str) -> datetime | None:
    # <input type="datetime-local"> sends local wall time without a zone; the admin pages work
    # in UTC, as the rules list shows.
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value.strip() else None


@router.post("/rules", response_class=HTMLResponse, dependencies=[CsrfChecked])
def add_rule(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    settings: AppSettings,
    name: Annotated[str, Form(max_length=200)],
    action: Annotated[str, Form(max_length=10)],
    placement: Annotated[str, Form(max_length=30)] = "",
    segment: Annotated[str, Form(max_length=60)] = "",
    sku: Annotated[str, Form(max_length=64)] = "",
    attribute: Annotated[str, Form(max_length=30)] = "",
    value: Annotated[str, Form(max_length=300)] = "",
    position: Annotated[str, Form(max_length=3)] = "",
    factor: Annotated[str, Form(max_length=10)] = "",
    starts_at: Annotated[str, Form(max_length=30)] = "",
    ends_at: Annotated[str, Form(max_length=30)] = "",
) -> HTMLResponse:
    try:
        moments = {"starts_at": _moment(starts_at), "ends_at": _moment(ends_at)}
        fields = {
            "name": name,
            "action": action,
            "placement": _optional(placement),
            "segment": _optional(segment),
            "sku": _optional(sku),
            "attribute": _optional(attribute),
            "value": _optional(value),
            "position": _optional(position),
            "factor": _optional(factor),
            **{key: moment.isoformat() if moment else None for key, moment in moments.items()},
        }
        # A form sends text: read it as text (API bodies must send numbers as numbers).
        rule = RuleIn.model_validate_strings(
            {key: text for key, text in fields.items() if text is not None}
        )
    except (ValidationError, ValueError) as failure:
        errors = (
            [
                {"field": ".".join(str(p) for p in e["loc"]) or "rule", "message": e["msg"]}
                for e in failure.errors(include_url=False)
            ]
            if isinstance(failure, ValidationError)
            else [{"field": "starts_at", "message": str(failure)}]
        )
        return _page(request, db, user, settings, errors=errors, status_code=422)
    created = service.create_rule(db, rule=rule, by=user.email)
    return _page(request, db, user, settings, message=f"Rule {created.id} ({created.name}) added")


@router.post("/rules/{rule_id}/delete", dependencies=[CsrfChecked])
def remove_rule(
    rule_id: Annotated[int, Path(ge=1, le=2_147_483_647)], db: DbSession, user: CurrentAdmin
) -> RedirectResponse:
    service.delete_rule(db, rule_id=rule_id, by=user.email)
    return RedirectResponse(
        f"/admin/recommendations?message=Rule+{rule_id}+deleted", status_code=303
    )


@router.post("/train", dependencies=[CsrfChecked])
def train(db: DbSession, user: CurrentAdmin) -> RedirectResponse:
    job = service.queue_training(db, by=user.email)
    return RedirectResponse(
        f"/admin/recommendations?message=Training+queued+(job+{job.id})", status_code=303
    )
