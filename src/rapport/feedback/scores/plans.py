"""Action plans: what the CX team does about a score target or a comment theme (an owner, an
action, a due date, a status). Staff work, not customers' data: nothing here is exported or
erased with a customer."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from rapport.feedback.models import ActionPlan, ScoreTarget
from rapport.feedback.schemas import ActionPlanIn
from rapport.platform import clock
from rapport.platform.errors import NotFound


def save_action_plan(
    db: Session, *, plan: ActionPlanIn, actor: str, plan_id: int | None = None
) -> ActionPlan:
    """Create an action plan, or change the one ``plan_id`` names."""
    if plan.target_id is not None and db.get(ScoreTarget, plan.target_id) is None:
        raise NotFound(f"No score target {plan.target_id}", field="target_id")
    now = clock.now()
    if plan_id is None:
        row = ActionPlan(created_by=actor, created_at=now)
        db.add(row)
    else:
        found = db.get(ActionPlan, plan_id)
        if found is None:
            raise NotFound(f"No action plan {plan_id}", field="plan_id")
        row = found
    row.owner = plan.owner.strip()
    row.action = plan.action.strip()
    row.due_on = plan.due_on
    row.status = plan.status
    row.target_id = plan.target_id
    row.theme = plan.theme.strip()
    row.updated_at = now
    db.commit()
    return row


def get_action_plan(db: Session, *, plan_id: int) -> ActionPlan | None:
    return db.get(ActionPlan, plan_id)


def count_action_plans(db: Session, *, status: str | None = None) -> int:
    query = select(func.count()).select_from(ActionPlan)
    if status:
        query = query.where(ActionPlan.status == status)
    return int(db.scalar(query) or 0)


def list_action_plans(
    db: Session, *, status: str | None = None, offset: int = 0, limit: int = 50
) -> list[ActionPlan]:
    """Plans still to do first (planned, in progress), each by due date."""
    finished = case((ActionPlan.status.in_(("done", "dropped")), 1), else_=0)
    query = select(ActionPlan)
    if status:
        query = query.where(ActionPlan.status == status)
    return list(
        db.scalars(
            query.order_by(finished, ActionPlan.due_on, ActionPlan.id).offset(offset).limit(limit)
        )
    )
