-- Platform table of every module schema for dead letters (platform/inbox): an event a consumer gave up on,
-- kept with its payload and last error until an operator retries or discards it. One row per consumer and
-- event: failing again after a retry (or a replay) reopens it.
-- The schema placeholder is replaced by the module's schema name when the migration runs.
CREATE TABLE {{schema}}.dead_letters (
  id              uuid        PRIMARY KEY,
  consumer        text        NOT NULL,
  event_id        uuid        NOT NULL,
  subject         text        NOT NULL,
  event_type      text        NOT NULL DEFAULT '',
  data            bytea       NOT NULL,
  headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
  error           text        NOT NULL,
  attempts        integer     NOT NULL CHECK (attempts >= 0),
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_failed_at  timestamptz NOT NULL DEFAULT now(),
  status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retried', 'discarded')),
  resolved_at     timestamptz,
  UNIQUE (consumer, event_id)
);
CREATE INDEX dead_letters_status_idx ON {{schema}}.dead_letters (status, last_failed_at);
