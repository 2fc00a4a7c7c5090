-- metering.rate and metering.rate_breakdown: every pricing model, and every
-- malformed pricing with its error. Worked examples are published ones:
-- Stripe, "Tiered pricing" (https://stripe.com/docs/billing/subscriptions/tiers):
-- tiers 1-5 at $5, 6-10 at $4, 11+ at $3 (no flat fees):
--   graduated 6 units = 5 x 5 + 1 x 4 = $29; volume 6 units = 6 x 4 = $24,
--   volume 25 units = 25 x 3 = $75... as the page's tables show per quantity.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
\set stripe '{"tiers": [{"up_to": 5, "unit_price": 5}, {"up_to": 10, "unit_price": 4}, {"up_to": null, "unit_price": 3}]}'
-- graduated: 1, 5, 6 and 20 units -> 5, 25, 29, 25 + 20 + 30 = 75
SELECT q, metering.rate(q, '{"model": "graduated"}'::jsonb || :'stripe') AS graduated,
          metering.rate(q, '{"model": "volume"}'::jsonb || :'stripe') AS volume
FROM unnest(ARRAY[0, 1, 5, 6, 10, 11, 20, 25]::numeric[]) q;
SELECT * FROM metering.rate_breakdown(20, '{"model": "graduated"}'::jsonb || :'stripe');
SELECT * FROM metering.rate_breakdown(20, '{"model": "volume"}'::jsonb || :'stripe');
-- flat prices: the first tier's flat price is charged even at quantity 0 (graduated);
-- Stripe's example of a flat fee per tier: first 5 units $0 + $20 flat... here hand-checked:
--   graduated 7 units = (5 x 1 + 10) + (2 x 0.5 + 20) = 36; volume 7 units = 7 x 0.5 + 20 = 23.5
\set flat '{"tiers": [{"up_to": 5, "unit_price": 1, "flat_price": 10}, {"up_to": null, "unit_price": "0.5", "flat_price": 20}]}'
SELECT q, metering.rate(q, '{"model": "graduated"}'::jsonb || :'flat') AS graduated,
          metering.rate(q, '{"model": "volume"}'::jsonb || :'flat') AS volume
FROM unnest(ARRAY[0, 3, 5, 7]::numeric[]) q;
-- per_unit, exact: 1,234,567 calls at $0.000123 = 151.851741 (rounded only on invoice lines)
SELECT metering.rate(1234567, '{"model": "per_unit", "unit_price": 0.000123}');
-- free units: billable = max(0, quantity - free_units)
SELECT q, metering.rate(q, '{"model": "per_unit", "unit_price": 2, "free_units": 100}')
FROM unnest(ARRAY[50, 100, 101, 250]::numeric[]) q;
-- package (Lago's example: $5 per 100 units, 100 free; 201 units -> 2 packages = $10)
SELECT metering.rate(201, '{"model": "package", "package_size": 100, "package_price": 5, "free_units": 100}');
SELECT * FROM metering.rate_breakdown(250, '{"model": "package", "package_size": 100, "package_price": 5}');
-- percentage: 2.9 % of 1,000.00 = 29.0000
SELECT metering.rate(1000.00, '{"model": "percentage", "rate": 2.9}');
SELECT * FROM metering.rate_breakdown(1000.00, '{"model": "percentage", "rate": 2.9}');
-- negative quantities (credits): linear for per_unit, 0 for tiers and packages
SELECT metering.rate(-10, '{"model": "per_unit", "unit_price": 2}') AS per_unit,
       metering.rate(-10, '{"model": "volume"}'::jsonb || :'stripe') AS volume;
-- pure functions: anyone may call them
SELECT has_function_privilege('public', 'metering.rate(numeric, jsonb)', 'EXECUTE');

-- Malformed pricing: MT009, naming the field and the value (tiers count from 0, as in jsonb)
\set VERBOSITY default
SELECT metering.rate(1, '[]');
SELECT metering.rate(1, '{}');
SELECT metering.rate(1, '{"model": "tiered"}');
SELECT metering.rate(1, '{"model": "per_unit"}');
SELECT metering.rate(1, '{"model": "per_unit", "unit_price": -1}');
SELECT metering.rate(1, '{"model": "per_unit", "unit_price": "abc"}');
SELECT metering.rate(1, '{"model": "per_unit", "unit_price": 1, "price": 2}');
SELECT metering.rate(1, '{"model": "graduated", "tiers": []}');
SELECT metering.rate(1, '{"model": "graduated", "tiers": [{"up_to": 5, "unit_price": 1}]}');
SELECT metering.rate(1, '{"model": "graduated", "tiers": [{"up_to": 5, "unit_price": 1}, {"up_to": 5, "unit_price": 1}, {"up_to": null, "unit_price": 1}]}');
SELECT metering.rate(1, '{"model": "graduated", "tiers": [{"up_to": null, "unit_price": 1}, {"up_to": 5, "unit_price": 1}]}');
SELECT metering.rate(1, '{"model": "volume", "tiers": [{"up_to": 0, "unit_price": 1}, {"up_to": null, "unit_price": 1}]}');
SELECT metering.rate(1, '{"model": "volume", "tiers": [{"up_to": null}]}');
SELECT metering.rate(1, '{"model": "package", "package_size": 0, "package_price": 1}');
SELECT metering.rate(1, '{"model": "percentage", "rate": 2, "free_units": -1}');
SELECT metering.rate('NaN', '{"model": "per_unit", "unit_price": 1}');
