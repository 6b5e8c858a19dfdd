package route

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGStore keeps a module's routing in its own schema (tables route_state, route_audit and
// route_discrepancies, created by the platform migrations of every module schema), through the module's pool.
type PGStore struct {
	pool   *pgxpool.Pool
	schema string
}

// NewPGStore returns the store of the module whose schema is schema, using its pool.
func NewPGStore(pool *pgxpool.Pool, schema string) *PGStore {
	return &PGStore{pool: pool, schema: schema}
}

// maxDiscrepancies is how many discrepancies a module keeps; older ones are deleted as new ones come.
const maxDiscrepancies = 1000

func (s *PGStore) table(name string) string { return pgx.Identifier{s.schema, name}.Sanitize() }

// Load reads the stored state.
func (s *PGStore) Load(ctx context.Context) (State, map[string]State, bool, error) {
	return load(ctx, s.pool, s.table("route_state"), false)
}

func load(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, table string, lock bool) (State, map[string]State, bool, error) {
	sql := "SELECT method, remote_bp, shadow FROM " + table
	if lock {
		sql += " FOR UPDATE"
	}
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return State{}, nil, false, fmt.Errorf("load routing state: %w", err)
	}
	defer rows.Close()
	var def State
	found := false
	overrides := map[string]State{}
	for rows.Next() {
		var method string
		var st State
		if err := rows.Scan(&method, &st.RemoteBP, &st.Shadow); err != nil {
			return State{}, nil, false, fmt.Errorf("load routing state: %w", err)
		}
		if method == "" {
			def, found = st, true
		} else {
			overrides[method] = st
		}
	}
	if err := rows.Err(); err != nil {
		return State{}, nil, false, fmt.Errorf("load routing state: %w", err)
	}
	return def, overrides, found, nil
}

// Update runs fn on the stored state and stores its result and audit entry in one transaction. A lock on
// the module's state serialises concurrent changes (also from other processes).
func (s *PGStore) Update(ctx context.Context, fn func(State, map[string]State) (State, map[string]State, AuditEntry, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A transaction-scoped advisory lock on the table's name: the rows to lock may not exist yet.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", s.table("route_state")); err != nil {
			return fmt.Errorf("lock routing state: %w", err)
		}
		def, overrides, _, err := load(ctx, tx, s.table("route_state"), true)
		if err != nil {
			return err
		}
		newDef, newOverrides, entry, err := fn(def, overrides)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+s.table("route_state")); err != nil {
			return fmt.Errorf("store routing state: %w", err)
		}
		upsert := "INSERT INTO " + s.table("route_state") + " (method, remote_bp, shadow, updated_at) VALUES ($1, $2, $3, $4)"
		if _, err := tx.Exec(ctx, upsert, "", newDef.RemoteBP, newDef.Shadow, entry.At); err != nil {
			return fmt.Errorf("store routing state: %w", err)
		}
		for method, st := range newOverrides {
			if _, err := tx.Exec(ctx, upsert, method, st.RemoteBP, st.Shadow, entry.At); err != nil {
				return fmt.Errorf("store routing state of %s: %w", method, err)
			}
		}
		_, err = tx.Exec(ctx, "INSERT INTO "+s.table("route_audit")+
			" (at, method, actor, reason, automatic, from_bp, from_shadow, to_bp, to_shadow) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			entry.At, entry.Method, entry.Actor, entry.Reason, entry.Automatic, entry.From.RemoteBP, entry.From.Shadow,
			entry.RemoteBP, entry.Shadow)
		if err != nil {
			return fmt.Errorf("store routing audit entry: %w", err)
		}
		return nil
	})
}

// Audit returns the newest limit audit entries.
func (s *PGStore) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, at, method, actor, reason, automatic, from_bp, from_shadow, to_bp, to_shadow FROM "+
		s.table("route_audit")+" ORDER BY id DESC LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("read routing audit: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := row.Scan(&e.ID, &e.At, &e.Method, &e.Actor, &e.Reason, &e.Automatic, &e.From.RemoteBP, &e.From.Shadow,
			&e.RemoteBP, &e.Shadow)
		return e, err
	})
}

// SaveDiscrepancy stores d, deleting the oldest beyond the newest maxDiscrepancies.
func (s *PGStore) SaveDiscrepancy(ctx context.Context, d Discrepancy) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "INSERT INTO "+s.table("route_discrepancies")+
			" (at, method, primary_side, request_id, diff) VALUES ($1, $2, $3, $4, $5) RETURNING id",
			d.At, d.Method, d.Primary, d.RequestID, d.Diff).Scan(&id)
		if err != nil {
			return fmt.Errorf("store discrepancy: %w", err)
		}
		if id%100 == 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM "+s.table("route_discrepancies")+" WHERE id <= $1", id-maxDiscrepancies); err != nil {
				return fmt.Errorf("trim discrepancies: %w", err)
			}
		}
		return nil
	})
}

// Discrepancies returns the newest limit discrepancies (Module left empty: the store is the module's).
func (s *PGStore) Discrepancies(ctx context.Context, limit int) ([]Discrepancy, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, at, method, primary_side, request_id, diff FROM "+
		s.table("route_discrepancies")+" ORDER BY id DESC LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("read discrepancies: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Discrepancy, error) {
		var d Discrepancy
		err := row.Scan(&d.ID, &d.At, &d.Method, &d.Primary, &d.RequestID, &d.Diff)
		return d, err
	})
}
