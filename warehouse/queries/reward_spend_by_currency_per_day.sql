-- Reward spend per currency and day: the rewards approved (what Pay4Feedback pays out),
-- by the UTC day of approval. Four decimals: the most any ISO 4217 currency has.
SELECT
  CAST(from_iso8601_timestamp(reviewed_at) AS DATE) AS day,
  reward.currency AS currency,
  count(*) AS approved,
  sum(CAST(reward.amount AS DECIMAL(18, 4))) AS spend
FROM responses_current
WHERE status = 'APPROVED'
GROUP BY CAST(from_iso8601_timestamp(reviewed_at) AS DATE), reward.currency
ORDER BY day DESC, currency
