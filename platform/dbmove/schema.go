package dbmove

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seamkit/seam/platform/migrate"
)

// shape is what must be the same on both sides for a copy to be faithful: the module schema's tables with
// their columns, its sequences and materialized views, and the migration versions applied.
type shape struct {
	tables    []table
	sequences []string
	// views lists the materialized views, each marked populated or not.
	views    []view
	versions map[string]int64
}

// view is a materialized view, which is refreshed from the copied tables rather than copied.
type view struct {
	name      string
	populated bool
}

// table is one ordinary table of the schema.
type table struct {
	name    string
	columns []column // sorted by name
}

// column is one column of a table.
type column struct {
	name, typ string
	generated bool
}

// copied lists the columns COPY writes: all but generated ones, which the target computes itself.
func (t table) copied() []string {
	var names []string
	for _, c := range t.columns {
		if !c.generated {
			names = append(names, c.name)
		}
	}
	return names
}

// readShape reads the schema's shape inside s's transaction.
func (s *side) readShape(ctx context.Context) (shape, error) {
	rows, err := s.tx.Query(ctx, `
SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = $1::text::regnamespace AND c.relkind = 'r'`, s.schema)
	if err != nil {
		return shape{}, fmt.Errorf("dbmove: %s: list tables: %w", s.name, err)
	}
	byTable := map[string][]column{}
	var name string
	var col column
	_, err = pgx.ForEachRow(rows, []any{&name, &col.name, &col.typ, &col.generated}, func() error {
		byTable[name] = append(byTable[name], col)
		return nil
	})
	if err != nil {
		return shape{}, fmt.Errorf("dbmove: %s: list tables: %w", s.name, err)
	}
	var sh shape
	for _, name := range slices.Sorted(maps.Keys(byTable)) {
		cols := byTable[name]
		slices.SortFunc(cols, func(a, b column) int { return strings.Compare(a.name, b.name) })
		sh.tables = append(sh.tables, table{name: name, columns: cols})
	}
	rows, err = s.tx.Query(ctx, `SELECT relname::text FROM pg_class
		WHERE relnamespace = $1::text::regnamespace AND relkind = 'S' ORDER BY 1`, s.schema)
	if err != nil {
		return shape{}, fmt.Errorf("dbmove: %s: list sequences: %w", s.name, err)
	}
	if sh.sequences, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return shape{}, fmt.Errorf("dbmove: %s: list sequences: %w", s.name, err)
	}
	rows, err = s.tx.Query(ctx, `SELECT c.relname::text, c.relispopulated FROM pg_class c
		WHERE c.relnamespace = $1::text::regnamespace AND c.relkind = 'm' ORDER BY 1`, s.schema)
	if err != nil {
		return shape{}, fmt.Errorf("dbmove: %s: list materialized views: %w", s.name, err)
	}
	if sh.views, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (view, error) {
		var v view
		err := row.Scan(&v.name, &v.populated)
		return v, err
	}); err != nil {
		return shape{}, fmt.Errorf("dbmove: %s: list materialized views: %w", s.name, err)
	}
	sh.versions = map[string]int64{}
	for _, vt := range []string{migrate.PlatformVersionTable, migrate.ModuleVersionTable} {
		if _, ok := byTable[vt]; !ok {
			continue
		}
		var v int64
		if err := s.tx.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM "+s.qualified(vt)+" WHERE is_applied").Scan(&v); err != nil {
			return shape{}, fmt.Errorf("dbmove: %s: read %s: %w", s.name, s.display(vt), err)
		}
		sh.versions[vt] = v
	}
	return sh, nil
}

// compare reads the schema's shape on both sides and returns it when both are the same; otherwise an
// error wrapping ErrSchemaMismatch lists the differences.
func (p *pair) compare(ctx context.Context, src, dst *side) (shape, error) {
	a, err := src.readShape(ctx)
	if err != nil {
		return shape{}, err
	}
	b, err := dst.readShape(ctx)
	if err != nil {
		return shape{}, err
	}
	var diffs []string
	versionsDiffer := false
	for _, vt := range []string{migrate.PlatformVersionTable, migrate.ModuleVersionTable} {
		if a.versions[vt] != b.versions[vt] {
			versionsDiffer = true
			diffs = append(diffs, fmt.Sprintf("%s: version %d on the source, %d on the target", src.display(vt), a.versions[vt], b.versions[vt]))
		}
	}
	diffs = append(diffs, tableDiffs(src, a.tables, b.tables)...)
	if !slices.Equal(a.sequences, b.sequences) {
		diffs = append(diffs, fmt.Sprintf("sequences: %s on the source, %s on the target", orNone(a.sequences), orNone(b.sequences)))
	}
	names := func(vs []view) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.name
		}
		return out
	}
	if !slices.Equal(names(a.views), names(b.views)) {
		diffs = append(diffs, fmt.Sprintf("materialized views: %s on the source, %s on the target", orNone(names(a.views)), orNone(names(b.views))))
	}
	if len(diffs) == 0 {
		return a, nil
	}
	hint := ""
	if versionsDiffer {
		hint = " (the source must be at the migrations this seam binary carries: run the module's current version " +
			"against it once, or use the seam built from the same commit as the module)"
	}
	return shape{}, fmt.Errorf("%w: %s%s", ErrSchemaMismatch, strings.Join(diffs, "; "), hint)
}

// tableDiffs describes how the tables of the source (a) and the target (b) differ.
func tableDiffs(s *side, a, b []table) []string {
	index := func(ts []table) map[string]table {
		m := make(map[string]table, len(ts))
		for _, t := range ts {
			m[t.name] = t
		}
		return m
	}
	am, bm := index(a), index(b)
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(am)) {
		bt, ok := bm[name]
		if !ok {
			diffs = append(diffs, "table "+s.display(name)+" only on the source")
			continue
		}
		ac, bc := am[name].columns, bt.columns
		if !slices.Equal(ac, bc) {
			diffs = append(diffs, fmt.Sprintf("table %s: columns (%s) on the source, (%s) on the target",
				s.display(name), describeColumns(ac), describeColumns(bc)))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(bm)) {
		if _, ok := am[name]; !ok {
			diffs = append(diffs, "table "+s.display(name)+" only on the target")
		}
	}
	return diffs
}

// describeColumns renders columns as "name type, ...".
func describeColumns(cols []column) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c.name + " " + c.typ
		if c.generated {
			parts[i] += " generated"
		}
	}
	return strings.Join(parts, ", ")
}

// copyOrder orders the tables so that every table comes after the tables its foreign keys reference,
// using the target's constraints. Deferrable foreign keys are deferred instead and self-references need no
// order (COPY checks them at its end); a cycle of foreign keys that are not deferrable is an error.
func copyOrder(ctx context.Context, dst *side, s shape) ([]table, error) {
	rows, err := dst.tx.Query(ctx, `
SELECT f.relname::text, t.relname::text
FROM pg_constraint c JOIN pg_class f ON f.oid = c.conrelid JOIN pg_class t ON t.oid = c.confrelid
WHERE c.contype = 'f' AND NOT c.condeferrable AND c.conrelid <> c.confrelid
  AND f.relnamespace = $1::text::regnamespace AND t.relnamespace = $1::text::regnamespace`, dst.schema)
	if err != nil {
		return nil, fmt.Errorf("dbmove: target: list foreign keys: %w", err)
	}
	after := map[string][]string{} // table -> the tables it references
	var from, to string
	if _, err := pgx.ForEachRow(rows, []any{&from, &to}, func() error {
		after[from] = append(after[from], to)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("dbmove: target: list foreign keys: %w", err)
	}
	placed := map[string]bool{}
	var order []table
	for len(order) < len(s.tables) {
		progress := false
		for _, t := range s.tables {
			if placed[t.name] || slices.ContainsFunc(after[t.name], func(ref string) bool { return !placed[ref] && known(s, ref) }) {
				continue
			}
			placed[t.name], progress = true, true
			order = append(order, t)
		}
		if !progress {
			var cycle []string
			for _, t := range s.tables {
				if !placed[t.name] {
					cycle = append(cycle, dst.display(t.name))
				}
			}
			return nil, fmt.Errorf("dbmove: no copy order satisfies the foreign keys of tables %s: some of them form a cycle "+
				"of foreign keys that are not DEFERRABLE; make one of those DEFERRABLE", joinAnd(cycle))
		}
	}
	return order, nil
}

// known reports whether name is one of the tables of s.
func known(s shape, name string) bool {
	return slices.ContainsFunc(s.tables, func(t table) bool { return t.name == name })
}

// trigger is a user trigger of the target that fires in a normal session.
type trigger struct {
	table, name string
	always      bool
}

// copyAll empties the module's tables on the target and copies them from the source in order, then sets
// the target's sequences to the source's values and refreshes the materialized views populated on the
// source. The target's own triggers are disabled meanwhile (the
// rows are copied as they are, not made again) and then restored as they were.
func (p *pair) copyAll(ctx context.Context, src, dst *side, s shape, order []table) error {
	if _, err := dst.tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
		return fmt.Errorf("dbmove: target: defer constraints: %w", err)
	}
	triggers, err := dst.enabledTriggers(ctx)
	if err != nil {
		return err
	}
	for _, t := range triggers {
		if _, err := dst.tx.Exec(ctx, "ALTER TABLE "+dst.qualified(t.table)+" DISABLE TRIGGER "+pgx.Identifier{t.name}.Sanitize()); err != nil {
			return fmt.Errorf("dbmove: target: disable trigger %s on %s: %w", t.name, dst.display(t.table), err)
		}
	}
	if len(s.tables) > 0 {
		names := make([]string, len(s.tables))
		for i, t := range s.tables {
			names[i] = dst.qualified(t.name)
		}
		if _, err := dst.tx.Exec(ctx, "TRUNCATE ONLY "+strings.Join(names, ", ")); err != nil {
			return fmt.Errorf("dbmove: target: empty the module's tables: %w", err)
		}
	}
	for _, t := range order {
		start := time.Now()
		n, err := copyTable(ctx, src, dst, t)
		if err != nil {
			return err
		}
		p.logger.Info("table copied", slog.String("table", dst.display(t.name)), slog.Int64("rows", n),
			slog.Duration("duration", time.Since(start)))
	}
	for _, seq := range s.sequences {
		v, err := src.sequenceValue(ctx, seq)
		if err != nil {
			return err
		}
		// setval alone is not undone by a rollback; on a sequence restarted in the same transaction (which
		// gives it new storage) it is, so a failed move leaves the target's sequences as they were too.
		if _, err := dst.tx.Exec(ctx, "ALTER SEQUENCE "+dst.qualified(seq)+" RESTART"); err != nil {
			return fmt.Errorf("dbmove: target: restart sequence %s: %w", dst.display(seq), err)
		}
		if _, err := dst.tx.Exec(ctx, "SELECT pg_catalog.setval($1::text::regclass, $2, $3)", dst.qualified(seq), v.LastValue, v.IsCalled); err != nil {
			return fmt.Errorf("dbmove: target: set sequence %s: %w", dst.display(seq), err)
		}
	}
	for _, v := range s.views {
		if v.populated {
			if _, err := dst.tx.Exec(ctx, "REFRESH MATERIALIZED VIEW "+dst.qualified(v.name)); err != nil {
				return fmt.Errorf("dbmove: target: refresh materialized view %s: %w", dst.display(v.name), err)
			}
		}
	}
	for _, t := range triggers {
		mode := ""
		if t.always {
			mode = "ALWAYS "
		}
		if _, err := dst.tx.Exec(ctx, "ALTER TABLE "+dst.qualified(t.table)+" ENABLE "+mode+"TRIGGER "+pgx.Identifier{t.name}.Sanitize()); err != nil {
			return fmt.Errorf("dbmove: target: enable trigger %s on %s again: %w", t.name, dst.display(t.table), err)
		}
	}
	return nil
}

// enabledTriggers lists the user triggers of the schema's tables that fire in a normal session.
func (s *side) enabledTriggers(ctx context.Context) ([]trigger, error) {
	rows, err := s.tx.Query(ctx, `
SELECT c.relname::text, t.tgname::text, t.tgenabled = 'A'
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = $1::text::regnamespace AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
ORDER BY 1, 2`, s.schema)
	if err != nil {
		return nil, fmt.Errorf("dbmove: %s: list triggers: %w", s.name, err)
	}
	var ts []trigger
	var t trigger
	if _, err := pgx.ForEachRow(rows, []any{&t.table, &t.name, &t.always}, func() error {
		ts = append(ts, t)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("dbmove: %s: list triggers: %w", s.name, err)
	}
	return ts, nil
}

// copyTable streams one table from the source's snapshot into the target with COPY, and returns the rows
// written.
func copyTable(ctx context.Context, src, dst *side, t table) (int64, error) {
	target := dst.qualified(t.name)
	if cols := t.copied(); len(cols) > 0 {
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = pgx.Identifier{c}.Sanitize()
		}
		target += " (" + strings.Join(quoted, ", ") + ")"
	}
	r, w := io.Pipe()
	read := make(chan error, 1)
	go func() {
		_, err := src.tx.Conn().PgConn().CopyTo(ctx, w, "COPY "+target+" TO STDOUT")
		w.CloseWithError(err)
		read <- err
	}()
	tag, err := dst.tx.Conn().PgConn().CopyFrom(ctx, r, "COPY "+target+" FROM STDIN")
	if err != nil {
		// Closing the pipe stops the source too; its error is then the pipe's, unless the source failed
		// first (and so made the target fail).
		r.CloseWithError(err)
		if srcErr := <-read; srcErr != nil && !errors.Is(srcErr, err) {
			return 0, fmt.Errorf("dbmove: source: copy %s: %w", src.display(t.name), srcErr)
		}
		return 0, fmt.Errorf("dbmove: target: copy %s: %w", dst.display(t.name), err)
	}
	if err := <-read; err != nil {
		return 0, fmt.Errorf("dbmove: source: copy %s: %w", src.display(t.name), err)
	}
	return tag.RowsAffected(), nil
}

// sequenceValue reads a sequence's state.
func (s *side) sequenceValue(ctx context.Context, seq string) (SequenceValue, error) {
	var v SequenceValue
	if err := s.tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+s.qualified(seq)).Scan(&v.LastValue, &v.IsCalled); err != nil {
		return v, fmt.Errorf("dbmove: %s: read sequence %s: %w", s.name, s.display(seq), err)
	}
	return v, nil
}

// digest computes a table's row count and checksum: the md5 of the md5s of its rows' text forms, sorted
// (byte-wise), which needs no primary key and does not depend on either database's collation. Each row's
// text form lists its columns by name, so the physical column order does not matter.
func (s *side) digest(ctx context.Context, t table) (Digest, error) {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = "r." + pgx.Identifier{c.name}.Sanitize()
	}
	query := `SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h COLLATE "C"), ''))
		FROM (SELECT md5(ROW(` + strings.Join(cols, ", ") + `)::text) AS h FROM ONLY ` + s.qualified(t.name) + ` r) AS hashes`
	var d Digest
	if err := s.tx.QueryRow(ctx, query).Scan(&d.Rows, &d.Checksum); err != nil {
		return d, fmt.Errorf("dbmove: %s: checksum %s: %w", s.name, s.display(t.name), err)
	}
	return d, nil
}

// verify compares every table's digest and every sequence's value on both sides; the error wraps
// ErrVerification when anything differs.
func (p *pair) verify(ctx context.Context, src, dst *side, s shape) (*Report, error) {
	r := &Report{Module: p.o.Module}
	for _, t := range s.tables {
		a, err := src.digest(ctx, t)
		if err != nil {
			return nil, err
		}
		b, err := dst.digest(ctx, t)
		if err != nil {
			return nil, err
		}
		r.Tables = append(r.Tables, TableResult{Name: src.display(t.name), Source: a, Target: b})
	}
	for _, seq := range s.sequences {
		a, err := src.sequenceValue(ctx, seq)
		if err != nil {
			return nil, err
		}
		b, err := dst.sequenceValue(ctx, seq)
		if err != nil {
			return nil, err
		}
		r.Sequences = append(r.Sequences, SequenceResult{Name: src.display(seq), Source: a, Target: b})
	}
	if differ := r.differences(); len(differ) > 0 {
		return r, fmt.Errorf("%w: %s", ErrVerification, strings.Join(differ, "; "))
	}
	return r, nil
}
