-- For sqlc only (listed first under this module's `schema:` in sqlc.yaml): at run time the platform creates
-- the schema before applying the migrations, which therefore do not CREATE SCHEMA themselves.
CREATE SCHEMA notifications;
