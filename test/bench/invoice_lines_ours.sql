-- Figure 4, ours: every invoice line of the monthly period that contains :'at', as a
-- user asks for "the September invoices" when customers are in several time zones
-- (each customer's period runs from its local midnight, so period_start differs).
SELECT customer_id, period_start, period_end, meter, quantity, amount
FROM metering.invoice_lines
WHERE period_start <= :'at' AND :'at' < period_end
