-- Platform tables of every module schema for sagas (platform/saga): one row per saga with its JSON state,
-- and a log with one row per step done and per compensation done, so neither is ever applied twice.
-- The schema placeholder is replaced by the module's schema name when the migration runs.
CREATE TABLE {{schema}}.sagas (
  id              text        PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 200),
  saga_type       text        NOT NULL CHECK (saga_type <> ''),
  state           jsonb       NOT NULL,
  status          text        NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed')),
  step            integer     NOT NULL DEFAULT 0 CHECK (step >= 0),
  attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  failed_step     text        NOT NULL DEFAULT '',
  error           text        NOT NULL DEFAULT '',
  error_code      text        NOT NULL DEFAULT '',
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sagas_active_idx ON {{schema}}.sagas (next_attempt_at) WHERE status IN ('running', 'compensating');
CREATE TABLE {{schema}}.saga_steps (
  saga_id text        NOT NULL REFERENCES {{schema}}.sagas (id) ON DELETE CASCADE,
  step    integer     NOT NULL CHECK (step >= 0),
  name    text        NOT NULL,
  action  text        NOT NULL CHECK (action IN ('do', 'compensate')),
  done_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (saga_id, step, action)
);
