-- For sqlc only (listed first under this module's `schema:` in sqlc.yaml): at run time the platform creates
-- the billing schema before applying sql/billing/migrations, which therefore do not CREATE SCHEMA themselves.
CREATE SCHEMA billing;
