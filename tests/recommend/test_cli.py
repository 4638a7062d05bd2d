"""``rapport recommend``: what the command line says about a trained model."""

from __future__ import annotations

from rapport.recommend import service
from rapport.recommend.cli import measured_lines

from .test_admin import MEASURED


def test_training_reports_each_protocol_and_the_best_part_in_the_admin_pages_words() -> None:
    # given a version whose best parts alone were UP-CF@r ("upcf") and EASE
    version = service.ModelVersion(version="v1", metrics=MEASURED)
    # then the command line names them as the admin page does, never by the model's codes
    assert measured_lines(version) == [
        "Last 28 days, repeats allowed: served Recall@20 0.316"
        " (best part alone, Customers like them: 0.303)",
        "Last 28 days, new items only: served Recall@20 0.132 (best part alone, EASE: 0.125)",
    ]
