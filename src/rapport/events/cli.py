"""``rapport events``: the events processors hold, and applying them again once mended. The
composition root (``rapport.cli``) registers the processors before these commands run."""

from __future__ import annotations

from typing import Annotated

import typer

from rapport.platform.console import Commands, console, require_migrated
from rapport.platform.db import open_session
from rapport.platform.errors import NotFound

events_app = Commands(help="Events the processors could not apply, and retrying them.")


@events_app.command("held")
def held_command(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many")] = 50,
) -> None:
    """List the events processors set aside after their handler raised on them, newest first."""
    from rapport.events import processors

    require_migrated()
    with open_session() as db:
        total, held = processors.held_events(db, limit=limit)
        behind = processors.count_held_behind(db)
    if not total:
        console.print("No event is held: every processor applied every event it read.")
        return
    for entry in held:
        if entry.behind_event_id is not None:
            console.print(
                f"[bold]{entry.processor}[/bold] holds event {entry.event_id}"
                f" ({entry.event_type}, log position {entry.position}) since"
                f" {entry.held_at:%Y-%m-%d %H:%M} UTC, untried, behind held event"
                f" {entry.behind_event_id} of the same customer or order.",
                highlight=False,
            )
            continue
        # One block per event: its error wraps under it at any terminal width.
        console.print(
            f"[bold]{entry.processor}[/bold] held event {entry.event_id} ({entry.event_type},"
            f" log position {entry.position}) at {entry.held_at:%Y-%m-%d %H:%M} UTC after"
            f" {entry.attempts} tries:",
            highlight=False,
        )
        console.print(f"  {entry.error}", highlight=False, markup=False)
    shown = f", the newest {len(held)} shown" if len(held) < total else ""
    waiting = (
        f"{behind:,} behind an earlier held event of the same customer or order" if behind else ""
    )
    said = ", ".join(part for part in (waiting, shown.removeprefix(", ")) if part)
    console.print(
        f"{total:,} held{f' ({said})' if said else ''}. Mend the cause (the error says what the"
        " handler met), then run: rapport events retry (it applies each held event before the"
        " ones held behind it)"
    )


@events_app.command("retry")
def retry_command(
    processor: Annotated[
        str | None, typer.Option(help="Only this processor's held events (see `events held`)")
    ] = None,
) -> None:
    """Apply the held events again, in log order; each that fails again stays held, and the
    events held behind it (of the same customer or order) stay held, untried."""
    from rapport.events import processors

    require_migrated()
    if processor is not None and not processors.known_processor(processor):
        names = ", ".join(p.name for p in processors.registered_processors())
        raise NotFound(f"There is no processor {processor!r}; the processors are: {names}.")
    with console.status("Applying held events"):
        outcome = processors.retry_held(processor_name=processor)
    if not outcome.applied and not outcome.still_failing and not outcome.still_waiting:
        console.print("No event is held: nothing to retry.")
        return
    waiting = (
        f"; {outcome.still_waiting:,} still waiting behind"
        f" {'it' if outcome.still_failing == 1 else 'them'}"
        if outcome.still_waiting
        else ""
    )
    console.print(
        f"{outcome.applied:,} applied and released; {outcome.still_failing:,} still"
        f" failing{waiting}."
    )
    if outcome.still_failing:
        console.print("`rapport events held` shows why they still fail.")


@events_app.command("skip")
def skip_command(
    event_id: Annotated[str, typer.Argument(help="The held event's id (see `events held`)")],
    processor: Annotated[
        str | None, typer.Option(help="Only this processor's hold on it (see `events held`)")
    ] = None,
) -> None:
    """Give up on a held event without applying it, when its cause cannot be mended; the next
    `rapport events retry` applies the events held behind it."""
    from rapport.events import processors

    require_migrated()
    if processor is not None and not processors.known_processor(processor):
        names = ", ".join(p.name for p in processors.registered_processors())
        raise NotFound(f"There is no processor {processor!r}; the processors are: {names}.")
    released = processors.skip_held(event_id=event_id, processor_name=processor)
    if not released:
        raise NotFound(
            f"No processor holds event {event_id!r}; `rapport events held` lists the held ones."
        )
    console.print(
        f"Event {event_id} skipped by {', '.join(released)}: it will not be applied. Run"
        " `rapport events retry` to apply the events held behind it.",
        highlight=False,
    )
