package dbmove

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of a verification: every table and sequence of the module's schema, on both sides.
type Report struct {
	// Module is the module moved or verified.
	Module string
	// Tables lists the schema's tables by name.
	Tables []TableResult
	// Sequences lists the schema's sequences by name.
	Sequences []SequenceResult
}

// TableResult is one table's digest on the source and on the target.
type TableResult struct {
	// Name is the schema-qualified table name (schema.table).
	Name string
	// Source and Target are the table's digest on each side.
	Source, Target Digest
}

// Digest summarises a table's content: the same rows give the same digest on any database.
type Digest struct {
	// Rows is the table's row count.
	Rows int64
	// Checksum is the md5 of the sorted md5s of the rows' text forms.
	Checksum string
}

// SequenceResult is one sequence's state on the source and on the target.
type SequenceResult struct {
	// Name is the schema-qualified sequence name (schema.sequence).
	Name string
	// Source and Target are the sequence's state on each side.
	Source, Target SequenceValue
}

// SequenceValue is a sequence's state, as setval takes it.
type SequenceValue struct {
	// LastValue is the sequence's last value.
	LastValue int64
	// IsCalled says whether LastValue was handed out already (the next value is then LastValue+increment).
	IsCalled bool
}

// OK reports whether the table has the same rows on both sides.
func (t TableResult) OK() bool { return t.Source == t.Target }

// OK reports whether the sequence is in the same state on both sides.
func (s SequenceResult) OK() bool { return s.Source == s.Target }

// OK reports whether every table and sequence matched.
func (r *Report) OK() bool { return len(r.differences()) == 0 }

// Rows is the number of rows on the source, over all tables.
func (r *Report) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Source.Rows
	}
	return n
}

// differences describes every table and sequence that differs.
func (r *Report) differences() []string {
	var diffs []string
	for _, t := range r.Tables {
		switch {
		case t.Source.Rows != t.Target.Rows:
			diffs = append(diffs, fmt.Sprintf("%s has %d rows on the source, %d on the target", t.Name, t.Source.Rows, t.Target.Rows))
		case t.Source.Checksum != t.Target.Checksum:
			diffs = append(diffs, fmt.Sprintf("%s has the same number of rows (%d) but other content on the target", t.Name, t.Source.Rows))
		}
	}
	for _, s := range r.Sequences {
		if s.OK() {
			continue
		}
		d := fmt.Sprintf("sequence %s is at %s on the source, %s on the target", s.Name, s.Source, s.Target)
		if s.Source.LastValue > s.Target.LastValue {
			d += " (the source moved on: something still writes to the module's schema there)"
		}
		diffs = append(diffs, d)
	}
	return diffs
}

// String renders the state as "42" (handed out) or "42 (not called)".
func (v SequenceValue) String() string {
	if v.IsCalled {
		return fmt.Sprint(v.LastValue)
	}
	return fmt.Sprintf("%d (not called)", v.LastValue)
}

// WriteText prints the report as two aligned tables: table, rows, checksum, ok; then sequence, value, ok.
// A difference shows the target's value next to the source's.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "table\trows\tchecksum\tok")
	for _, t := range r.Tables {
		rows, sum, ok := fmt.Sprint(t.Source.Rows), t.Source.Checksum, "ok"
		if t.Source.Rows != t.Target.Rows {
			rows += fmt.Sprintf(" (target %d)", t.Target.Rows)
		}
		if t.Source.Checksum != t.Target.Checksum {
			sum += " (target " + t.Target.Checksum + ")"
		}
		if !t.OK() {
			ok = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, rows, sum, ok)
	}
	if err := tw.Flush(); err != nil || len(r.Sequences) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "sequence\tvalue\tok")
	for _, s := range r.Sequences {
		value, ok := s.Source.String(), "ok"
		if !s.OK() {
			value += " (target " + s.Target.String() + ")"
			ok = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, value, ok)
	}
	return tw.Flush()
}

// joinComma joins names with ", ".
func joinComma(names []string) string { return strings.Join(names, ", ") }

// joinAnd joins names as "a, b and c".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return joinComma(names)
	}
	return joinComma(names[:len(names)-1]) + " and " + names[len(names)-1]
}
