"""The recommend domain's background work: retrain every night on the day's purchases, and
within the hour once a shop has purchases but no model that learnt any."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.orders import service as orders
from rapport.platform import jobs
from rapport.platform.db import read_only
from rapport.platform.settings import get_settings
from rapport.recommend import service
from rapport.recommend.models import ModelVersion

log = logging.getLogger(__name__)

NIGHTLY = timedelta(days=1)
# How often the worker looks: a shop whose history arrives (an import, its first orders)
# gets its first model within this, not at the next UTC day.
TICK = timedelta(hours=1)


def nothing_to_learn(db: Session) -> bool:
    """Whether the shop has no orders yet: a model trained now would answer with no items and
    a version, where storefronts wait for ``model_version: null`` to show their own default."""
    return orders.count_orders(db) == 0


def learnt_since(db: Session, *, since: datetime) -> bool:
    """Whether a model version trained at or after ``since`` learnt from some purchase."""
    found = db.scalar(
        select(ModelVersion.version)
        .where(ModelVersion.trained_at >= since, ModelVersion.purchases > 0)
        .limit(1)
    )
    return found is not None


@jobs.job(service.TRAIN_JOB)
def train(db: Session, payload: dict[str, Any]) -> None:
    """Train a new model version and switch serving to it. The schedule looks every hour and
    trains once a UTC day: it leaves out a day whose model already learnt from purchases
    (``rapport init --demo`` trains before the first ``serve``, whose worker would otherwise
    learn the same history again at once), and a shop with no orders yet (a fresh install
    keeps answering ``model_version: null``), or whose orders hold no purchase (all cancelled
    or returned: nothing is trained or recorded, the model served stays). Training someone
    asked for (``payload["by"]``) runs whatever the day, once there are purchases."""
    scheduled = "by" not in payload
    day = jobs.period_start(NIGHTLY)
    # The checks and the training's read share one snapshot: begun by the check, a write
    # transaction would hold SQLite's lock through the whole read of the history.
    read_only(db)
    if scheduled and learnt_since(db, since=day):
        log.info("nightly training left out: a model was already trained since %s", day)
        return
    if nothing_to_learn(db):
        log.info("training left out: no orders to learn from yet")
        return
    try:
        service.train_model(
            db, data_dir=get_settings().data_dir, trained_by=str(payload.get("by", "schedule"))
        )
    except service.NothingToLearn as nothing:
        # Every order cancelled or returned: one query on the purchase lines, then nothing is
        # recorded or served, and the next tick looks again.
        log.info("training left out: %s", nothing)


jobs.scheduled(service.TRAIN_JOB, every=TICK)
