"""An event the triggers hold because the profile processor they run after holds it reads, on
the event processing page, as waiting for that processor ("Waits for customers.profile"),
where it read as waiting behind itself (its own event id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.planning.jobs import PROFILE_PROCESSOR, TRIGGERS_PROCESSOR
from rapport.domains import load_tasks
from rapport.events.models import HeldEvent
from rapport.platform import service as platform
from tests.customers.factories import track
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

load_tasks()
START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_an_event_held_for_the_profile_processor_says_it_waits_for_it(
    client: TestClient, db: Session
) -> None:
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    # given a viewing the profile processor failed on, and the triggers holding it for it
    # (as events.processors writes them: the triggers' entry behind its own position)
    viewed = track(db, "product_viewed", user_id="C-ana", properties={"sku": "SKU-1"})
    for processor, attempts, behind, error in (
        (PROFILE_PROCESSOR, 3, None, "ValueError: unknown source 'kiosk'"),
        (TRIGGERS_PROCESSOR, 0, viewed.position, "Waits for customers.profile"),
    ):
        db.add(
            HeldEvent(
                processor=processor,
                position=viewed.position,
                attempts=attempts,
                error=error,
                first_failed_at=START,
                last_failed_at=START,
                held_at=START + timedelta(minutes=1),
                behind=behind,
            )
        )
    db.commit()
    assert sign_in(client).status_code == 303

    # when the event processing page is opened
    page = client.get("/admin/settings/processing").text

    # then the triggers' row says the processor it waits for, not the event itself
    rows = page.split('data-testid="held-events"')[1].split("</table>")[0].split("<tr>")
    triggers = next(
        row for row in rows if f'<td data-label="Processor">{TRIGGERS_PROCESSOR}<' in row
    )
    assert f"Waits for <code>{PROFILE_PROCESSOR}</code>, which holds this event" in triggers
    assert "Waits behind" not in triggers
    # and the profile processor's row its error
    profile = next(row for row in rows if f'<td data-label="Processor">{PROFILE_PROCESSOR}<' in row)
    assert "unknown source &#39;kiosk&#39;" in profile
