-- Each campaign as it is now: its newest row, by the campaign's updated_at, then (within
-- one second) by its lifecycle (DRAFT, then ACTIVE or PAUSED, then ENDED), then a webhook's
-- event before a backfill's snapshot (listed within that second, it may predate the
-- change), then by the time of the event.
SELECT
  event_id, event_type, event_time, tenant_id, reconciled_at,
  id, name, description, status, reward, max_responses, questions, created_at, updated_at
FROM (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY id
      -- One key, its fields compared in turn (faster than five keys). None may be null:
      -- Athena cannot order rows with a null field.
      ORDER BY ROW(
        from_iso8601_timestamp(coalesce(updated_at, '1970-01-01T00:00:00Z')),
        CASE status WHEN 'DRAFT' THEN 0 WHEN 'ENDED' THEN 2 ELSE 1 END,
        CASE WHEN event_type LIKE '%snapshot' THEN 0 ELSE 1 END,
        from_iso8601_timestamp(coalesce(event_time, '1970-01-01T00:00:00Z')),
        event_id
      ) DESC
    ) AS newest_first
  FROM campaigns
)
WHERE newest_first = 1
