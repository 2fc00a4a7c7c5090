-- Figure 4, tuned baseline: invoice_lines_baseline.sql with the distinct users counted
-- in two GROUP BY levels (customer, meter, user; then customer, meter) instead of
-- count(DISTINCT ...), which Postgres can only compute by sorting every group.
SELECT p.customer_id, p.period_start, p.period_end, m.meter, q.quantity,
       round(CASE m.meter
           WHEN 'api_calls' THEN     -- graduated: up to 500 free, up to 5,000 at 0.002, above 0.0015 + 5
               greatest(least(q.billable, 5000) - 500, 0) * 0.002
               + CASE WHEN q.billable > 5000 THEN (q.billable - 5000) * 0.0015 + 5 ELSE 0 END
           WHEN 'tokens' THEN        -- volume: the whole quantity at its tier's price, plus its flat fee
               CASE WHEN q.billable <= 1000000 THEN q.billable * 0.00001
                    WHEN q.billable <= 10000000 THEN q.billable * 0.000008 + 2
                    ELSE q.billable * 0.000005 + 10 END
           WHEN 'storage_gb' THEN    -- per unit
               q.billable * 0.125
           WHEN 'active_users' THEN  -- packages of 10 at 15
               ceil(q.billable / 10) * 15
       END, 2) AS amount
FROM bench_il.plain_periods p
CROSS JOIN (VALUES ('api_calls', 100), ('tokens', 50000), ('storage_gb', 5), ('active_users', 3)) m (meter, free_units)
LEFT JOIN (
    SELECT x.customer_id, x.meter, sum(x.n) AS n, sum(x.s) AS s, max(x.mx) AS mx, count(x.u) AS u
    FROM (SELECT e.customer_id, e.meter,
                 CASE WHEN e.meter = 'active_users' THEN e.properties ->> 'user' END AS u,
                 count(*) AS n, sum(e.value) AS s, max(e.value) AS mx
          FROM bench_il.plain_events e
          JOIN bench_il.plain_periods pp ON pp.customer_id = e.customer_id
           AND e.due_at >= pp.period_start AND e.due_at < pp.period_end
          WHERE pp.period_start <= :'at' AND :'at' < pp.period_end
          GROUP BY 1, 2, 3) x
    GROUP BY x.customer_id, x.meter
) u ON u.customer_id = p.customer_id AND u.meter = m.meter
CROSS JOIN LATERAL (
    SELECT coalesce(CASE m.meter WHEN 'api_calls' THEN u.n WHEN 'tokens' THEN u.s
                                 WHEN 'storage_gb' THEN u.mx WHEN 'active_users' THEN u.u END, 0) AS quantity) q0
CROSS JOIN LATERAL (SELECT q0.quantity, greatest(q0.quantity - m.free_units, 0) AS billable) q
WHERE p.period_start <= :'at' AND :'at' < p.period_end
UNION ALL
SELECT customer_id, period_start, period_end, NULL, 1, 49.00
FROM bench_il.plain_periods
WHERE period_start <= :'at' AND :'at' < period_end
