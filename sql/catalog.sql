-- Catalog: customers, meters and plans, with every bad input.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;

-- customers
SELECT metering.create_customer('acme', 'Acme Corp', 'billing@acme.test', 'Europe/Berlin');
SELECT metering.create_customer('globex', timezone => 'america/new_york', auto_issue => false);
SELECT customer_id, name, email, timezone, auto_issue FROM metering.customers ORDER BY customer_id;
SELECT metering.create_customer('acme');                      -- already exists
SELECT metering.create_customer(NULL);                        -- NULL id
SELECT metering.create_customer('');                          -- empty id
SELECT metering.create_customer(repeat('x', 256));            -- too long
SELECT metering.create_customer('initech', timezone => 'Mars/Olympus');
SELECT metering.create_customer('initech', timezone => 'EST+5');   -- a POSIX rule, not an IANA zone
SELECT metering.create_customer('initech', timezone => '../../etc/passwd');
SELECT metering.create_customer('initech', timezone => NULL);
SELECT metering.create_customer('initech', auto_issue => NULL);
DELETE FROM metering.customers;                                -- customers are kept
TRUNCATE metering.customers;

-- meters: every aggregation kind
SELECT metering.create_meter('api_calls', 'count');
SELECT metering.create_meter('storage_gb', 'sum', 'gb');
SELECT metering.create_meter('peak_cpu', 'max');
SELECT metering.create_meter('low_temp', 'min', allow_negative => true);
SELECT metering.create_meter('plan_tier', 'latest');
SELECT metering.create_meter('active_users', 'unique_count', 'user_id');
SELECT metering.create_meter('seat_hours', 'time_weighted');
SELECT metering.create_meter('seats', 'counter');
SELECT metering.create_meter('eu_calls', 'count', filter => '{"region": "eu"}');
SELECT metering.create_meter('big_calls', 'custom', expression => 'sum(value) FILTER (WHERE value > 100)');
SELECT code, aggregation, value_property, filter, allow_negative FROM metering.meters ORDER BY code;
SELECT metering.create_meter('api_calls', 'count');           -- already exists
SELECT metering.create_meter('x', 'average');                 -- unknown aggregation
SELECT metering.create_meter('x', NULL);
SELECT metering.create_meter(NULL, 'count');
SELECT metering.create_meter('x', 'sum', '');                 -- empty value_property
SELECT metering.create_meter('x', 'count', filter => '["eu"]');
SELECT metering.create_meter('x', 'custom');                  -- custom needs an expression
SELECT metering.create_meter('x', 'sum', expression => 'sum(value)');
UPDATE metering.meters SET aggregation = 'sum' WHERE code = 'api_calls';
DELETE FROM metering.meters WHERE code = 'api_calls';

-- plans
SELECT metering.create_plan('starter', 'USD');
SELECT metering.create_plan('pro', 'EUR', '1 month', 49.99);
SELECT metering.create_plan('yearly_jp', 'JPY', '1 year', 120000);
SELECT code, currency, metering.currency_exponent(currency) AS exponent, billing_interval, base_fee
FROM metering.plans ORDER BY code;
SELECT metering.create_plan('starter', 'USD');                -- already exists
SELECT metering.create_plan('x', 'usd');                      -- currency codes are upper case
SELECT metering.create_plan('x', 'XYZ');
SELECT metering.create_plan('x', 'XAU');                      -- gold has no minor unit: not a billing currency
SELECT metering.create_plan('x', NULL);
SELECT metering.create_plan('x', 'USD', '0 days');
SELECT metering.create_plan('x', 'USD', '-1 month');
SELECT metering.create_plan('x', 'USD', NULL);
SELECT metering.create_plan('x', 'USD', '1 month', -5);
SELECT metering.create_plan('x', 'USD', '1 month', 'NaN');
SELECT metering.create_plan('x', 'USD', '1 month', 'Infinity');
SELECT metering.create_plan('x', 'USD', '1 month', NULL);
SELECT metering.currency_exponent('BHD'), metering.currency_exponent('JPY'), metering.currency_exponent('nope');

-- user data survives pg_dump: the tables are configuration tables of the extension
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
WHERE e.extname = 'metering' ORDER BY 1;
