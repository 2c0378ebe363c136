-- Each response as it is now: its newest row, by the response's own time (reviewed_at once
-- a reviewer decided, submitted_at before), then (within one second) by how far it got
-- (decided, then scored, then submitted), then a webhook's event before a backfill's
-- snapshot, then by the time of the event.
SELECT
  event_id, event_type, event_time, tenant_id, reconciled_at,
  id, campaign_id, status, respondent, answers, quality, reward, rejection_reason,
  submitted_at, reviewed_at
FROM (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY id
      -- One key, its fields compared in turn (faster than five keys). None may be null:
      -- Athena cannot order rows with a null field.
      ORDER BY ROW(
        from_iso8601_timestamp(coalesce(reviewed_at, submitted_at, '1970-01-01T00:00:00Z')),
        CASE WHEN reviewed_at IS NOT NULL THEN 2 WHEN quality IS NOT NULL THEN 1 ELSE 0 END,
        CASE WHEN event_type LIKE '%snapshot' THEN 0 ELSE 1 END,
        from_iso8601_timestamp(coalesce(event_time, '1970-01-01T00:00:00Z')),
        event_id
      ) DESC
    ) AS newest_first
  FROM responses
)
WHERE newest_first = 1
