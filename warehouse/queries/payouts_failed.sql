-- Payouts that failed and why, newest first.
SELECT
  completed_at AS failed_at,
  id AS payout_id,
  campaign_id,
  response_id,
  respondent.id AS respondent_id,
  amount,
  currency,
  failure_reason
FROM payouts_current
WHERE status = 'FAILED'
ORDER BY from_iso8601_timestamp(completed_at) DESC
