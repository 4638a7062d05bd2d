"""Before and after: the same benchmarks, run in turn against an older revision and the working
tree, in one session on one machine, reported as ratios.

    .venv/bin/python bench/before_after.py OLD_REV [--benches ingest,loyalty,recommend_serve]
        [--rounds 3] [--quick] [--args 'loyalty=--members 2000 --seconds 20']

Checks OLD_REV out into a temporary git worktree (``git worktree add --detach``; it gets the
checkout's ``node_modules`` and ``../shared`` as links), then runs each bench ``--rounds`` times
against each side, alternating which side goes first from one round to the next so that a
machine slowly getting busier favours neither. Both sides run the bench scripts of this working
tree (so both are measured the same way, each starting its own throw-away PostgreSQL with
production durability where it needs one) with the Python of this checkout's virtual environment;
only the package differs: ``PYTHONPATH=<side>/src:<this tree>/bench``, from the side's folder
(each run's first lines of output name the ``rapport`` package it imported). Each run's last
line of output is its JSON of headline figures; every numeric figure is compared on medians.

Prints a Markdown table per bench (old median, new median, new/old, which way is better, every
run's value), then one JSON line: ``{"<bench>": {"<figure>": new/old median, ...}, ...}``. Each
run's full output is kept under ``--logs`` (default bench/out/before-after-<time>/). The
worktree is removed at the end, also after a failure or Ctrl-C.

Default arguments per bench: ``ingest`` runs ``--skip-baseline`` (the naive baseline measures no
Rapport code); ``--quick`` adds each bench's ``--quick``; ``--args BENCH=ARGS`` (repeatable)
appends arguments for one bench.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Started as a script, this folder is on sys.path.
from postgres import stop_on_sigterm

BENCH = Path(__file__).resolve().parent
DEFAULT_BENCHES = ("ingest", "loyalty", "recommend_serve")
DEFAULT_ARGS: dict[str, list[str]] = {"ingest": ["--skip-baseline"]}
# What a bench's figure names end with, and which way is better.
HIGHER_IS_BETTER = ("per_s", "_rate")
LOWER_IS_BETTER = ("_ms", "_s", "_mb", "_mib", "violations", "errors", "failures", "unanswered")
# How long a bench may take to stop after SIGINT, then after SIGTERM, before SIGKILL.
STOP_GRACE_S = 30.0


@dataclass
class Side:
    name: str  # "old" or "new"
    tree: Path
    label: str  # revision, as shown in the report

    def environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": f"{self.tree / 'src'}{os.pathsep}{BENCH}"}


@dataclass
class Runs:
    """Every run's headline figures of one bench on one side."""

    figures: list[dict[str, float]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # log files of failed runs
    settings: list[str] = field(default_factory=list)  # the bench's PostgreSQL table rows
    loads: list[str] = field(default_factory=list)  # load average (1 min) at each start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("old_rev", metavar="OLD_REV", help="the revision to compare against")
    parser.add_argument("--benches", default=",".join(DEFAULT_BENCHES))
    parser.add_argument("--rounds", type=int, default=3, help="runs per bench and side")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every bench")
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="BENCH=ARGS",
        help="extra arguments for one bench, e.g. 'loyalty=--members 2000 --seconds 20'",
    )
    parser.add_argument("--logs", type=Path, default=None, help="where each run's output goes")
    args = parser.parse_args()

    benches = [name.strip() for name in args.benches.split(",") if name.strip()]
    for name in benches:
        if not (BENCH / f"{name}.py").is_file():
            parser.error(f"no bench/{name}.py")
    bench_args = {name: [*DEFAULT_ARGS.get(name, [])] for name in benches}
    if args.quick:
        for name in benches:
            bench_args[name].append("--quick")
    for extra in args.args:
        name, _, rest = extra.partition("=")
        if name not in bench_args:
            parser.error(f"--args names {name!r}, which is not among --benches")
        bench_args[name] += shlex.split(rest)

    repository = Path(git(BENCH, "rev-parse", "--show-toplevel"))
    old_commit = git(repository, "rev-parse", "--verify", f"{args.old_rev}^{{commit}}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = args.logs or BENCH / "out" / f"before-after-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)

    with stop_on_sigterm(), old_worktree(repository, old_commit) as old_tree:
        old = Side("old", old_tree, describe_commit(repository, old_commit))
        new = Side("new", repository, describe_working_tree(repository))
        for side in (old, new):
            log(f"{side.name}: {side.label}; imports {imported_package(side)}")
        results = run_all(benches, bench_args, args.rounds, old, new, logs)
    report(benches, bench_args, args.rounds, old, new, results, logs)


def run_all(
    benches: list[str],
    bench_args: dict[str, list[str]],
    rounds: int,
    old: Side,
    new: Side,
    logs: Path,
) -> dict[str, dict[str, Runs]]:
    results = {name: {"old": Runs(), "new": Runs()} for name in benches}
    for round_number in range(1, rounds + 1):
        # Old first in odd rounds, new first in even ones.
        order = (old, new) if round_number % 2 else (new, old)
        for name in benches:
            for side in order:
                output = logs / f"{name}-{side.name}-{round_number}.log"
                load = Path("/proc/loadavg").read_text().split()[0]
                log(
                    f"round {round_number}/{rounds}: {name} on {side.name} "
                    f"(load {load}) -> {output}"
                )
                started = time.monotonic()
                figures = run_bench(name, bench_args[name], side, output)
                took = time.monotonic() - started
                runs = results[name][side.name]
                runs.loads.append(load)
                if figures is None:
                    runs.failed.append(str(output))
                    log(f"  failed after {took:.0f} s; the output ends:\n{tail(output)}")
                    continue
                runs.figures.append(figures)
                runs.settings = postgres_rows(output) or runs.settings
                log(f"  {took:.0f} s: {json.dumps(figures)}")
    return results


def run_bench(name: str, arguments: list[str], side: Side, output: Path) -> dict[str, float] | None:
    """One run of ``bench/<name>.py`` against ``side``'s package; its numeric headline
    figures, or None when it failed."""
    command = [sys.executable, str(BENCH / f"{name}.py"), *arguments]
    with output.open("w") as sink:
        sink.write(f"$ PYTHONPATH={side.environment()['PYTHONPATH']} {shlex.join(command)}\n")
        sink.write(f"# in {side.tree} ({side.name}: {side.label})\n")
        sink.flush()
        # Its own process group: on Ctrl-C or SIGTERM the bench, its servers and their
        # workers are stopped together, politely first so that the bench stops its PostgreSQL.
        process = subprocess.Popen(
            command,
            cwd=side.tree,
            env=side.environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Started in the background, this runner ignores SIGINT and so would the bench:
            # let it take SIGINT as KeyboardInterrupt, so that it cleans up when stopped.
            preexec_fn=default_sigint,
        )
        try:
            code = process.wait()
        except BaseException:
            stop_group(process)
            raise
    if code != 0:
        return None
    return headline_figures(output.read_text(errors="replace"))


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()


def headline_figures(output: str) -> dict[str, float] | None:
    """The numbers in the last line that is a JSON object, nested keys joined with '.'."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return dict(flatten(found))
    return None


def flatten(found: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in found.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield f"{prefix}{key}", float(value)


def postgres_rows(output: Path) -> list[str]:
    """The PostgreSQL server and durability rows of a bench's table, as ``measure: value``."""
    found = []
    for line in output.read_text(errors="replace").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] in ("PostgreSQL server", "PostgreSQL durability"):
            found.append(f"{cells[0]}: {cells[1]}")
    return found


def report(
    benches: list[str],
    bench_args: dict[str, list[str]],
    rounds: int,
    old: Side,
    new: Side,
    results: dict[str, dict[str, Runs]],
    logs: Path,
) -> None:
    ratios: dict[str, dict[str, float | None]] = {}
    print(f"- old: {old.label}\n- new: {new.label}\n- {rounds} round(s), sides alternating\n")
    for name in benches:
        runs = results[name]
        command = shlex.join([f"bench/{name}.py", *bench_args[name]])
        print(f"### `{command}`\n")
        print("| figure | better | old median | new median | new/old | old runs | new runs |")
        print("| --- | --- | ---: | ---: | ---: | --- | --- |")
        ratios[name] = {}
        names = [key for figures in runs["old"].figures + runs["new"].figures for key in figures]
        for figure in dict.fromkeys(names):
            before = [f[figure] for f in runs["old"].figures if figure in f]
            after = [f[figure] for f in runs["new"].figures if figure in f]
            old_median = statistics.median(before) if before else None
            new_median = statistics.median(after) if after else None
            ratio = None
            if old_median is not None and new_median is not None:
                if old_median != 0:
                    ratio = new_median / old_median
                elif new_median == 0:
                    ratio = 1.0  # none before, none after (violations, errors)
            ratios[name][figure] = round(ratio, 3) if ratio is not None else None
            print(
                f"| {figure} | {better(figure)} | {number(old_median)} | {number(new_median)} "
                f"| {number(ratio, 3)} | {', '.join(map(number, before))} "
                f"| {', '.join(map(number, after))} |"
            )
        print(
            f"\nLoad average (1 min) at the runs' starts: old {', '.join(runs['old'].loads)}; "
            f"new {', '.join(runs['new'].loads)}."
        )
        settings = list(dict.fromkeys(runs["old"].settings + runs["new"].settings))
        if settings:
            print("; ".join(settings) + ".")
        for side in ("old", "new"):
            if runs[side].failed:
                print(f"\n{side}: {len(runs[side].failed)} failed run(s): {runs[side].failed}")
        print()
    print(f"Each run's output: {logs}\n")
    print(json.dumps(ratios))
    if any(runs[side].failed for runs in results.values() for side in runs):
        sys.exit(1)


def better(figure: str) -> str:
    if figure.endswith(HIGHER_IS_BETTER):
        return "higher"
    if figure.endswith(LOWER_IS_BETTER):
        return "lower"
    return "?"


def number(value: float | None, digits: int | None = None) -> str:
    if value is None:
        return "—"
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


# --- the trees -----------------------------------------------------------------------------


@contextmanager
def old_worktree(repository: Path, commit: str) -> Iterator[Path]:
    """``commit`` checked out in a temporary worktree, with the checkout's ignored
    neighbours it needs: ``node_modules`` (served pages' scripts) and ``../shared`` (data)."""
    root = Path(tempfile.mkdtemp(prefix="rapport-before-after-"))
    tree = root / "tree"
    try:
        git(repository, "worktree", "add", "--detach", str(tree), commit)
        if (repository / "node_modules").exists():
            (tree / "node_modules").symlink_to(repository / "node_modules")
        shared = repository.parent / "shared"
        if shared.exists():
            (root / "shared").symlink_to(shared)
        yield tree
    finally:
        subprocess.run(
            ["git", "-C", str(repository), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["git", "-C", str(repository), "worktree", "prune"], capture_output=True)


def git(directory: Path, *arguments: str) -> str:
    done = subprocess.run(["git", "-C", str(directory), *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout.strip()


def describe_commit(repository: Path, commit: str) -> str:
    described = git(repository, "log", "-1", "--format=%h (%cd) %s", "--date=short", commit)
    return described if len(described) <= 80 else described[:79] + "…"


def describe_working_tree(repository: Path) -> str:
    head = describe_commit(repository, "HEAD")
    changed = git(repository, "status", "--porcelain", "--untracked-files=no", "--", "src")
    return f"working tree at {head}" + (" with uncommitted changes in src/" if changed else "")


def imported_package(side: Side) -> str:
    """Where ``import rapport`` finds the package with this side's environment: proof that
    each side measures its own code."""
    done = subprocess.run(
        [sys.executable, "-c", "import rapport; print(rapport.__file__)"],
        cwd=side.tree,
        env=side.environment(),
        capture_output=True,
        text=True,
    )
    found = done.stdout.strip() or done.stderr.strip()[-300:]
    if not found.startswith(str(side.tree / "src")):
        raise SystemExit(f"{side.name}: rapport imported from {found}, not {side.tree / 'src'}")
    return found


def tail(output: Path, lines: int = 30) -> str:
    return "\n".join(output.read_text(errors="replace").splitlines()[-lines:])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
