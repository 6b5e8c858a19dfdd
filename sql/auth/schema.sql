-- For sqlc only: at run time the platform (platform/migrate) creates the auth schema before applying
-- sql/auth/migrations, which therefore must not create it themselves.
CREATE SCHEMA auth;
