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
      ORDER BY
        from_iso8601_timestamp(updated_at) DESC NULLS LAST,
        CASE status WHEN 'DRAFT' THEN 0 WHEN 'ENDED' THEN 2 ELSE 1 END DESC,
        CASE WHEN event_type LIKE '%snapshot' THEN 0 ELSE 1 END DESC,
        from_iso8601_timestamp(event_time) DESC NULLS LAST,
        event_id DESC
    ) AS newest_first
  FROM campaigns
)
WHERE newest_first = 1
