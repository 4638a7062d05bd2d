"""The recommend domain's background work: retrain every night on the day's purchases."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.platform import jobs
from rapport.platform.db import read_only
from rapport.platform.settings import get_settings
from rapport.recommend import service

log = logging.getLogger(__name__)

NIGHTLY = timedelta(days=1)


@jobs.job(service.TRAIN_JOB)
def train(db: Session, payload: dict[str, Any]) -> None:
    """Train a new model version and switch serving to it. The nightly run leaves out a day
    whose model is already trained: ``rapport init --demo`` trains before the first ``serve``,
    whose worker would otherwise learn the same history again at once. Training someone asked
    for (``payload["by"]``) always runs."""
    scheduled = "by" not in payload
    day = jobs.period_start(NIGHTLY)
    # The check and the training's read share one snapshot: begun by the check, a write
    # transaction would hold SQLite's lock through the whole read of the history.
    read_only(db)
    if scheduled and service.trained_since(db, since=day):
        log.info("nightly training left out: a model was already trained since %s", day)
        return
    service.train_model(
        db, data_dir=get_settings().data_dir, trained_by=str(payload.get("by", "schedule"))
    )


jobs.scheduled(service.TRAIN_JOB, every=NIGHTLY)
