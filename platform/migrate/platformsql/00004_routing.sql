-- Platform tables of every module schema for its routing between local and remote (platform/route): the
-- stored rollout state (the module's default, method '', and per-method overrides), the audit trail of its
-- changes, and the discrepancies shadow calls found.
-- The schema placeholder is replaced by the module's schema name when the migration runs.
CREATE TABLE {{schema}}.route_state (
  method     text        PRIMARY KEY,
  remote_bp  integer     NOT NULL CHECK (remote_bp BETWEEN 0 AND 10000),
  shadow     boolean     NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {{schema}}.route_audit (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  method      text        NOT NULL DEFAULT '',
  actor       text        NOT NULL,
  reason      text        NOT NULL,
  automatic   boolean     NOT NULL DEFAULT false,
  from_bp     integer     NOT NULL,
  from_shadow boolean     NOT NULL,
  to_bp       integer     NOT NULL,
  to_shadow   boolean     NOT NULL
);
CREATE TABLE {{schema}}.route_discrepancies (
  id         bigserial   PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  method     text        NOT NULL,
  primary_side text      NOT NULL CHECK (primary_side IN ('local', 'remote')),
  request_id text        NOT NULL DEFAULT '',
  diff       text        NOT NULL
);
