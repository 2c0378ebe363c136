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
      -- One key, its fields compared in turn. None may be null: Athena cannot order rows
      -- with a null field.
      ORDER BY ROW(
        from_iso8601_timestamp(coalesce(completed_at, '1970-01-01T00:00:00Z')),
        from_iso8601_timestamp(coalesce(event_time, '1970-01-01T00:00:00Z')),
        event_id
      ) DESC
    ) AS newest_first
  FROM payouts
)
WHERE newest_first = 1
