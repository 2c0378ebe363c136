-- Responses waiting for a reviewer's decision, oldest first, with their AI quality score
-- (null until the AI has scored them).
SELECT
  r.submitted_at,
  r.id AS response_id,
  r.campaign_id,
  c.name AS campaign,
  r.respondent.id AS respondent_id,
  r.quality.score AS score,
  r.quality.verdict AS verdict,
  r.reward.amount AS reward,
  r.reward.currency AS currency
FROM responses_current AS r
LEFT JOIN campaigns_current AS c ON c.id = r.campaign_id
WHERE r.status = 'PENDING'
ORDER BY from_iso8601_timestamp(r.submitted_at)
