-- Figure 4, for the record: the usage lines as metering computed them before the
-- set-based plan (one metering._quantity call, i.e. one index range scan of the
-- primary key, per subscription x period x charge), with the same base fee lines.
SELECT customer_id, period_start, period_end, meter, quantity, amount FROM (
    SELECT sp.customer_id, sp.period_start, sp.period_end, NULL::text AS meter, sp.fraction AS quantity,
           round(sp.base_fee * sp.seconds / sp.full_seconds, sp.exponent) AS amount
    FROM metering._started_periods sp
    UNION ALL
    SELECT sp.customer_id, sp.period_start, sp.period_end, ch.meter::text, q.quantity,
           round(metering.rate(q.quantity, ch.pricing), sp.exponent)
    FROM metering._started_periods sp
    JOIN metering.charges ch ON ch.plan_code = sp.plan_code
    JOIN metering.meters m ON m.code = ch.meter
    CROSS JOIN LATERAL (SELECT coalesce(metering._quantity(m, sp.customer_id, sp.period_start, sp.period_end), 0)
                        AS quantity) q
) l
WHERE period_start <= :'at' AND :'at' < period_end
