-- Billing periods: counted from the original anchor in the customer's time zone.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
SELECT metering.create_plan('monthly', 'USD'), metering.create_plan('weekly', 'EUR', '7 days'),
       metering.create_plan('yearly', 'USD', '1 year'), metering.create_plan('hourly', 'USD', '1 hour');
SELECT metering.create_customer('utc'), metering.create_customer('ny', timezone => 'America/New_York'),
       metering.create_customer('berlin', timezone => 'Europe/Berlin'),
       metering.create_customer('kiritimati', timezone => 'Pacific/Kiritimati'),
       metering.create_customer('pago', timezone => 'Pacific/Pago_Pago'),
       metering.create_customer('leap'), metering.create_customer('dst');

-- An anchor on the 31st: Feb 29 in 2024 (leap), Feb 28 in 2025, then back to the 31st.
SELECT metering.subscribe('utc', 'monthly', '2024-01-31') AS s_utc \gset
SELECT * FROM metering.billing_periods(:s_utc, '2024-01-01', '2024-06-01');
SELECT * FROM metering.billing_periods(:s_utc, '2025-01-15', '2025-04-15');
-- half-open: a period ending at from_ts is not returned; one starting at to_ts neither
SELECT * FROM metering.billing_periods(:s_utc, '2024-02-29', '2024-03-31');

-- A yearly anchor on Feb 29: Feb 28 in common years, Feb 29 again in 2028.
SELECT metering.subscribe('leap', 'yearly', '2024-02-29') AS s_leap \gset
SELECT * FROM metering.billing_periods(:s_leap, '2024-01-01', '2029-01-01');

-- Local midnight stays local midnight across DST: New York (spring 2025-03-09,
-- autumn 2025-11-02) and Berlin (2025-03-30, 2025-10-26). UTC offsets change.
SELECT metering.subscribe('ny', 'monthly', '2025-01-01 00:00 America/New_York') AS s_ny \gset
SELECT * FROM metering.billing_periods(:s_ny, '2025-01-01', '2026-01-01');
SELECT metering.subscribe('berlin', 'weekly', '2025-03-24 00:00 Europe/Berlin') AS s_berlin \gset
SELECT period_start, period_end, period_end - period_start AS length
FROM metering.billing_periods(:s_berlin, '2025-03-24', '2025-04-08');
SELECT period_start, period_end, period_end - period_start AS length
FROM metering.billing_periods(:s_berlin, '2025-10-20', '2025-11-04');
-- An hourly plan counts elapsed hours, also across the autumn overlap.
SELECT metering.subscribe('dst', 'hourly', '2025-11-02 00:00 America/New_York') AS s_dst \gset
SELECT count(*) AS hours FROM metering.billing_periods(:s_dst, '2025-11-02 04:00+00', '2025-11-03 05:00+00');

-- Zones far from UTC: Kiritimati (UTC+14) and Pago Pago (UTC-11): local midnight on the 1st.
SELECT metering.subscribe('kiritimati', 'monthly', '2025-01-01 00:00 Pacific/Kiritimati') AS s_kir \gset
SELECT * FROM metering.billing_periods(:s_kir, '2024-12-31', '2025-03-01');
SELECT metering.subscribe('pago', 'monthly', '2025-01-01 00:00 Pacific/Pago_Pago') AS s_pago \gset
SELECT * FROM metering.billing_periods(:s_pago, '2025-01-01', '2025-03-01');

-- Cut to the subscription: a partial first and last period.
SELECT metering.end_subscription(:s_utc, '2024-04-10');
SELECT * FROM metering.billing_periods(:s_utc, '2024-01-01', '2025-01-01');

-- Errors
SELECT * FROM metering.billing_periods(NULL, '2025-01-01', '2025-02-01');
SELECT * FROM metering.billing_periods(:s_ny, '2025-02-01', '2025-01-01');
SELECT * FROM metering.billing_periods(999, '2025-01-01', '2025-02-01');
SELECT * FROM metering.billing_periods(:s_dst, '2025-01-01', '2040-01-01');
SELECT metering.subscribe('nobody', 'monthly');
SELECT metering.subscribe('ny', 'nothing');
SELECT metering.subscribe('ny', 'monthly', '2025-06-01');
SELECT metering.subscribe('ny', 'monthly', 'infinity');
SELECT metering.end_subscription(:s_utc, '2024-05-01');
SELECT metering.end_subscription(:s_ny, '2024-01-01');
SELECT metering.end_subscription(12345);
-- after an end, a new subscription may start
SELECT metering.end_subscription(:s_ny, '2025-06-01');
SELECT metering.subscribe('ny', 'weekly', '2025-06-01 00:00 America/New_York') > 0 AS subscribed;
