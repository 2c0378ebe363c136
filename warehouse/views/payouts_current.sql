-- Each payout as it is now: its newest row, by the payout's completed_at, then by the time
-- of the event that brought it.
SELECT
  event_id, event_type, event_time, tenant_id, reconciled_at,
  id, response_id, campaign_id, respondent, amount, currency, status, failure_reason,
  completed_at
FROM (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY id
      ORDER BY
        from_iso8601_timestamp(completed_at) DESC NULLS LAST,
        from_iso8601_timestamp(event_time) DESC NULLS LAST,
        event_id DESC
    ) AS newest_first
  FROM payouts
)
WHERE newest_first = 1
