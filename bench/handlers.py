"""Figures (1) and (2): each handler's cold start and warm cost per event, against the reference.

Cold start: a fresh Lambda-like process (`bench.lambda_env`) imports the handler's module
and handles one event, AWS answered by a moto_server over HTTP (no mocking library in the
process, which would change what is imported) and Pay4Feedback by the sandbox; timed
from the process's start to the handler's return. Runs are interleaved with the
reference's, in rotating order, so the machine's noise hits every subject alike, and an
untimed first round fills the file cache.

Warm cost: for the functions doing the reference's job, in one such process per subject,
after warm-up, the time of each event's handler call, AWS answered in-process by canned answers
(the same for every subject).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.lambda_env import (
    Launch,
    LaunchError,
    function_code,
    launch,
    runtime_standin,
    without_bytecode,
)
from bench.report import Row, median, spread
from bench.subjects import AWS_ANSWERS, REFERENCE, Fixture, Subject, bench_services

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bench.lambda_env import ChildRun

logger = logging.getLogger(__name__)

COLD = "(1) cold start"
WARM = "(2) warm cost"
WITHOUT_BYTECODE = "layer without .pyc"


@dataclass(frozen=True)
class Variant:
    label: str
    subject: Subject
    launch: Launch


def _rotated[T](items: Sequence[T], by: int) -> list[T]:
    shift = by % len(items)
    return [*items[shift:], *items[:shift]]


def _variant(label: str, subject: Subject, env: dict[str, str], *path: Path) -> Variant:
    return Variant(
        label, subject, Launch(subject.name, path, env, subject.handler, subject.timeout)
    )


def variants_of(
    subjects: Sequence[Subject],
    fixture: Fixture,
    layer: Path,
    workdir: Path,
    *,
    without_bytecode_too: bool,
) -> list[Variant]:
    """Each subject's execution environment; with its variant on a layer without .pyc
    files (where the subject asks for one) if `without_bytecode_too`."""
    runtime = runtime_standin(workdir / "runtime")
    layer_source_only: Path | None = None
    found = []
    for number, subject in enumerate(subjects):
        code = function_code(subject.code, workdir / "task" / str(number))
        env = (
            fixture.env()
            | {"LAMBDA_TASK_ROOT": str(code), "AWS_LAMBDA_FUNCTION_NAME": f"bench-{number}"}
            | dict(subject.env(fixture))
        )
        if not subject.uses_layer:
            found.append(_variant(subject.name, subject, env, code, runtime))
            continue
        found.append(_variant(subject.name, subject, env, code, layer, runtime))
        if without_bytecode_too and subject.without_bytecode_too:
            layer_source_only = layer_source_only or without_bytecode(
                layer, workdir / "layer-source-only"
            )
            label = f"{subject.name}, {WITHOUT_BYTECODE}"
            found.append(_variant(label, subject, env, code, layer_source_only, runtime))
    return found


def cold_starts(subjects: Sequence[Subject], layer: Path, workdir: Path, *, runs: int) -> list[Row]:
    """Figure (1): `runs` cold starts of each subject (and variant), medians as rows."""
    with bench_services() as stack:
        fixture = stack.fixture
        variants = variants_of(subjects, fixture, layer, workdir, without_bytecode_too=True)
        samples: dict[str, list[ChildRun]] = {variant.label: [] for variant in variants}
        number = 0
        for round_number in range(runs + 1):
            for variant in _rotated(variants, round_number):
                number += 1
                event = variant.subject.event(number, fixture)
                run = launch(variant.launch, [event], workdir / "runs")
                check(variant, run, [number], fixture)
                if round_number > 0:  # the first round only fills the file cache
                    samples[variant.label].append(run)
            logger.info("cold starts: round %d of %d done", round_number, runs)
    return _cold_rows(variants, samples)


def check(variant: Variant, run: ChildRun, numbers: Sequence[int], fixture: Fixture) -> None:
    """Raise unless the handler succeeded with every event: a failure is not measured."""
    for number, answer in zip(numbers, run.answers, strict=True):
        if not variant.subject.succeeded(answer, number, fixture):
            raise LaunchError(
                f"{variant.label} did not succeed with event {number}: {answer!r}\n"
                + run.output[-3000:]
            )


def _cold_rows(variants: Sequence[Variant], samples: dict[str, list[ChildRun]]) -> list[Row]:
    reference = samples[REFERENCE.name]
    reference_cold = median([run.cold_start for run in reference]) * 1000
    reference_init = median([run.init for run in reference]) * 1000
    rows = []
    for variant in variants:
        runs = samples[variant.label]
        is_reference = variant.subject is REFERENCE
        main_variant = variant.label == variant.subject.name
        cold = [run.cold_start * 1000 for run in runs]
        init = [run.init * 1000 for run in runs]
        details = {
            "cold_start_ms": spread(cold),
            "import_and_init_ms": spread(init),
            "first_event_ms": spread([run.first_event * 1000 for run in runs]),
            "interpreter_start_ms": spread([(run.started - run.launched) * 1000 for run in runs]),
            "modules_loaded": median([run.modules for run in runs]),
        }
        rows.append(
            Row(
                COLD,
                variant.label,
                "process start -> first answer",
                median(cold),
                "ms",
                reference=None if is_reference else reference_cold,
                target=variant.subject.targets.cold_ratio if main_variant else None,
                details=details,
            )
        )
        rows.append(
            Row(
                COLD,
                variant.label,
                "of which import + init",
                median(init),
                "ms",
                reference=None if is_reference else reference_init,
            )
        )
    return rows


def warm_costs(
    subjects: Sequence[Subject],
    layer: Path,
    workdir: Path,
    *,
    events: int,
    warmup: int,
    rounds: int,
) -> list[Row]:
    """Figure (2): the median time per event of the warm handlers doing the reference's job."""
    fixture = Fixture.named()
    comparable = [subject for subject in subjects if subject.compare_warm]
    variants = variants_of(comparable, fixture, layer, workdir / "warm", without_bytecode_too=False)
    durations: dict[str, list[float]] = {variant.label: [] for variant in variants}
    numbers = range(1 + warmup + events)
    handled = {
        variant.label: [variant.subject.event(number, fixture) for number in numbers]
        for variant in variants
    }
    for round_number in range(rounds):
        for variant in _rotated(variants, round_number):
            run = launch(
                variant.launch,
                handled[variant.label],
                workdir / "warm" / "runs",
                mode="warm",
                answers=AWS_ANSWERS,
                warmup=warmup,
            )
            check(variant, run, numbers, fixture)
            durations[variant.label].extend(run.durations)
        logger.info("warm costs: round %d of %d done", round_number + 1, rounds)
    reference = median(durations[REFERENCE.name]) * 1e6
    rows = []
    for variant in variants:
        micros = [seconds * 1e6 for seconds in durations[variant.label]]
        is_reference = variant.subject is REFERENCE
        rows.append(
            Row(
                WARM,
                variant.label,
                "per event, AWS answered in-process",
                median(micros),
                "µs",
                reference=None if is_reference else reference,
                target=variant.subject.targets.warm_ratio,
                details={"per_event_us": spread(micros)},
            )
        )
    return rows
