"""The warehouse mirror's backfill as a CloudFormation custom resource: when the mirror is
created (the first deploy with EnableWarehouseMirror and WarehouseBackfillOnCreate), the
campaigns and responses the API lists go into it as snapshots (p4f.backfill).

    Create   backfill, within the function's time; then answer
    Update   nothing: run `p4f-bridge backfill --stack NAME` to backfill again
    Delete   nothing: the rows stay in the mirror's bucket

It answers SUCCESS whatever the backfill met (a deadline, the API, the bus): the mirror
works without it, and failing would roll the whole deploy back. The answer's reason, and
the function's log, say what was done and, when it stopped early, what to run for the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from p4f.backfill import BackfillError
from p4f.budget import BudgetUnavailableError
from p4f.custom_resource import CustomResourceRequest, Outcome, RequestType, Status

if TYPE_CHECKING:
    from p4f.backfill import Backfill

logger = Logger(child=True)

PHYSICAL_ID = "warehouse-backfill"
"""The resource's id: there is one backfill per stack, and nothing to delete."""


class BackfillResource:
    def __init__(self, backfill: Backfill) -> None:
        self._backfill = backfill

    def apply(self, request: CustomResourceRequest) -> Outcome:
        if request.request_type is not RequestType.CREATE:
            return Outcome(Status.SUCCESS, PHYSICAL_ID, "nothing to do after the first backfill")
        stack = request.stack_id.split("/")[1] if "/" in request.stack_id else "NAME"
        again = f"run `p4f-bridge backfill --stack {stack}` for the rest"
        try:
            done = self._backfill.run()
        except (BackfillError, BudgetUnavailableError) as exc:
            logger.exception("the backfill failed")
            return Outcome(Status.SUCCESS, PHYSICAL_ID, f"backfill failed ({exc}); {again}")
        logger.info(
            "backfilled",
            extra={
                "published": {str(kind): count for kind, count in done.published.items()},
                "refused": len(done.refused),
                "stopped": done.stopped,
            },
        )
        reason = done.describe()
        return Outcome(
            Status.SUCCESS, PHYSICAL_ID, reason if done.complete else f"{reason}; {again}"
        )
