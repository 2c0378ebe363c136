"""`python -m bench`: run the figures, print the table, write the JSON (see `bench`)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.client_rate import client_rate
from bench.forwarders import forwarder_throughput
from bench.handlers import cold_starts, warm_costs
from bench.lambda_env import importable_layer
from bench.layer_size import layer_size
from bench.reconciler import reconciler_run
from bench.report import Row, machine, markdown, write_json
from bench.reward_review import reward_review
from bench.slack_burst import Burst, slack_burst
from bench.subjects import BUILD, SUBJECTS
from bench.tenant_budget import tenant_budget
from bench.warehouse import duckdb_queries, local_path

logger = logging.getLogger("bench")

RESULTS = Path(__file__).resolve().parent / "results"
BUILT_LAYER = BUILD / "P4fLayer"


@dataclass(frozen=True)
class Settings:
    cold_runs: int = 15
    warm_events: int = 2000
    warm_warmup: int = 200
    warm_rounds: int = 3
    client_limit: int = 60
    client_window: float = 2.0
    client_windows: int = 10
    budget_callers: int = 4
    budget_requests: int = 55
    budget_window: float = 4.0
    budget_windows: int = 3
    mirror_events: int = 2000
    mirror_responses: int = 100_000
    mirror_runs: int = 5
    burst_events: int = 500
    burst_spread: float = 60.0
    burst_without_digests: bool = False
    reconciled_responses: int = 200
    """Of five campaigns, all their webhooks dropped (figure 8): about 460 events, within the
    1,000 the sandbox keeps for `events()` and `deliveries()`."""
    reviewed_responses: int = 200
    """Figure 9: about five windows of the budget's background pace (600 sandbox events)."""
    review_window: int = 6
    """Figure 9's minute, compressed (seconds; the budget's window is whole seconds)."""


@dataclass(frozen=True)
class Workspace:
    settings: Settings
    workdir: Path
    layer_override: Path | None = None

    def layer(self) -> Path:
        """The built layer's python/, importable on this machine (built once per run)."""
        found = self.workdir / "importable-layer"
        if not found.exists():
            chosen = self.layer_override or importable_layer(BUILT_LAYER, self.workdir)
            found.symlink_to(chosen.resolve())
        return found


def _layer(space: Workspace) -> list[Row]:
    return layer_size(BUILT_LAYER, space.workdir / "zip")


def _cold(space: Workspace) -> list[Row]:
    return cold_starts(
        SUBJECTS, space.layer(), space.workdir / "cold", runs=space.settings.cold_runs
    )


def _warm(space: Workspace) -> list[Row]:
    return warm_costs(
        SUBJECTS,
        space.layer(),
        space.workdir,
        events=space.settings.warm_events,
        warmup=space.settings.warm_warmup,
        rounds=space.settings.warm_rounds,
    )


def _forwarders(space: Workspace) -> list[Row]:
    return forwarder_throughput(SUBJECTS, space.layer(), space.workdir / "forwarders")


def _burst(space: Workspace) -> list[Row]:
    settings = space.settings
    return slack_burst(
        Burst(settings.burst_events, settings.burst_spread, settings.burst_without_digests)
    )


def _client(space: Workspace) -> list[Row]:
    return client_rate(
        limit=space.settings.client_limit,
        window=space.settings.client_window,
        windows=space.settings.client_windows,
    )


def _budget(space: Workspace) -> list[Row]:
    return tenant_budget(
        callers=space.settings.budget_callers,
        budget=space.settings.budget_requests,
        window=space.settings.budget_window,
        windows=space.settings.budget_windows,
    )


def _warehouse(space: Workspace) -> list[Row]:
    settings = space.settings
    return local_path(settings.mirror_events) + duckdb_queries(
        settings.mirror_responses, settings.mirror_runs, space.workdir / "warehouse"
    )


def _reconciler(space: Workspace) -> list[Row]:
    return reconciler_run(responses_each=space.settings.reconciled_responses // 5)


def _review(space: Workspace) -> list[Row]:
    settings = space.settings
    return reward_review(responses=settings.reviewed_responses, window=settings.review_window)


FIGURES: dict[str, Callable[[Workspace], list[Row]]] = {
    "cold": _cold,
    "warm": _warm,
    "forwarders": _forwarders,
    "burst": _burst,
    "client": _client,
    "budget": _budget,
    "layer": _layer,
    "warehouse": _warehouse,
    "reconciler": _reconciler,
    "review": _review,
}
"""Each figure by name, in the table's order."""
LAYER_FREE = frozenset({"burst", "client", "budget", "warehouse", "reconciler", "review"})
"""The figures that run without the layer `sam build` makes."""


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="figures to run")
    parser.add_argument("--runs", type=int, default=defaults.cold_runs, help="cold starts each")
    parser.add_argument("--warm-events", type=int, default=defaults.warm_events)
    parser.add_argument("--client-windows", type=int, default=defaults.client_windows)
    parser.add_argument("--mirror-responses", type=int, default=defaults.mirror_responses)
    parser.add_argument(
        "--burst-without-digests",
        action="store_true",
        help="the Slack burst with one message per event (the figure before digests: 500+ s)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--layer",
        type=Path,
        help="run the handlers on this layer python/ folder instead (e.g. an older build)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="bench: %(message)s", stream=sys.stderr)
    logging.getLogger("bench").setLevel(logging.INFO)
    chosen = args.only or list(FIGURES)
    if set(chosen) - LAYER_FREE and not (BUILT_LAYER / "python").is_dir():
        parser.error(f"no built layer in {BUILT_LAYER}: run `make bench` (it runs sam build)")
    settings = Settings(
        cold_runs=args.runs,
        warm_events=args.warm_events,
        client_windows=args.client_windows,
        mirror_responses=args.mirror_responses,
        burst_without_digests=args.burst_without_digests,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="p4f-bench-") as workdir:
        space = Workspace(settings, Path(workdir), args.layer)
        for name, figure in FIGURES.items():
            if name in chosen:
                logger.info("measuring %s", name)
                rows.extend(figure(space))
    written = write_json(
        rows, asdict(settings) | {"layer": str(args.layer or BUILT_LAYER)}, args.results
    )
    described = machine()
    shown = written.relative_to(Path.cwd()) if written.is_relative_to(Path.cwd()) else written
    print(markdown(rows))
    print(
        f"\n{described['cpus']} CPUs, {described['machine']}, "
        f"Python {described['python']}; JSON: {shown}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
