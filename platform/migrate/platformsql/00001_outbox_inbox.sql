-- Platform tables of every module schema: the transactional outbox and the consumers' inbox.
-- The schema placeholder is replaced by the module's schema name when the migration runs.
CREATE TABLE {{schema}}.outbox (
  seq           bigserial PRIMARY KEY,
  id            uuid NOT NULL UNIQUE,
  subject       text NOT NULL,
  event_type    text NOT NULL,
  aggregate_key text NOT NULL DEFAULT '',
  payload       jsonb NOT NULL,
  headers       jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  sent_at       timestamptz
);
CREATE INDEX outbox_unsent_idx ON {{schema}}.outbox (seq) WHERE sent_at IS NULL;
CREATE TABLE {{schema}}.inbox (
  consumer   text NOT NULL,
  event_id   uuid NOT NULL,
  subject    text NOT NULL,
  handled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
