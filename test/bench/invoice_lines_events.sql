-- The events of Figures 4 and 5, generated set-based in arrival order (due_at
-- ascending, as a live system stores them): nevents due in the month, nside around it,
-- committed every chunk rows (a procedure: Figure 5's rollup worker consumes them as
-- they arrive). Customer k gets a share proportional to sqrt(k) - sqrt(k - 1): cust-1
-- about 1 %, cust-10000 about 0.005 %, so quantities span every tier. Meters rotate;
-- tokens 1..4,000, storage 1..500 GB, active_users 1 with {"user": "u1".."uN"} where
-- customer k has N = 1 + k % 30 users, every event {"region": ...}. Through the BEFORE
-- INSERT trigger, as COPY's rows would be. The same seed gives the same events
-- whatever the chunk.
CREATE PROCEDURE bench_il.load_events(nevents bigint, nside bigint, chunk bigint)
LANGUAGE plpgsql AS $proc$
DECLARE
    lo bigint := 1;
BEGIN
    WHILE lo <= nevents + nside LOOP
        INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at, properties)
        SELECT 'cust-' || g.customer, m.meter,
               CASE m.k WHEN 1 THEN 1 + floor(g.r2 * 4000) WHEN 2 THEN 1 + floor(g.r2 * 500) ELSE 1 END,
               g.at, g.at,
               CASE m.k WHEN 3 THEN jsonb_build_object('region', m.region,
                                                       'user', 'u' || (1 + floor(g.r2 * (1 + g.customer % 30)))::int)
                        ELSE jsonb_build_object('region', m.region) END
        FROM bench_il.params p,
             generate_series(lo, least(lo + chunk - 1, nevents + nside)) i,
             -- (a LATERAL that references i, so that random() runs for every row)
             LATERAL (SELECT 1 + floor(10000 * power(random(), 2))::int AS customer,
                             random() AS r2,
                             -- nside / 2 events over the 5 days before the month, nevents
                             -- over the month, the rest over the 5 days after it; ascending in i
                             CASE WHEN i <= nside / 2
                                  THEN (p.month - interval '5 days') + (i - 1 + random()) / (nside / 2) * interval '5 days'
                                  WHEN i <= nside / 2 + nevents
                                  THEN p.month + (i - nside / 2 - 1 + random()) / nevents
                                                 * ((p.month + interval '1 month') - p.month)
                                  ELSE (p.month + interval '1 month')
                                       + (i - nside / 2 - nevents - 1 + random()) / (nside - nside / 2) * interval '5 days'
                             END AT TIME ZONE 'UTC' AS at) g,
             LATERAL (SELECT i % 4 AS k,
                             (ARRAY['api_calls', 'tokens', 'storage_gb', 'active_users'])[1 + i % 4] AS meter,
                             (ARRAY['eu', 'us', 'ap'])[1 + i % 3] AS region) m;
        COMMIT;
        lo := lo + chunk;
    END LOOP;
END
$proc$;
