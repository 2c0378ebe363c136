-- Approval rate and mean AI quality score by campaign: of the responses a reviewer
-- decided, the share approved; the mean of the scores given so far.
SELECT
  r.campaign_id,
  max(c.name) AS campaign,
  count(*) AS responses,
  count_if(r.status = 'APPROVED') AS approved,
  count_if(r.status = 'REJECTED') AS rejected,
  round(
    100.0 * count_if(r.status = 'APPROVED')
    / nullif(count_if(r.status IN ('APPROVED', 'REJECTED')), 0),
    1
  ) AS approval_rate_pct,
  round(avg(r.quality.score), 1) AS mean_score
FROM responses_current AS r
LEFT JOIN campaigns_current AS c ON c.id = r.campaign_id
GROUP BY r.campaign_id
ORDER BY responses DESC, campaign
