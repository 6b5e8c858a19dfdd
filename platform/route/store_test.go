package route_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	"github.com/seamkit/seam/platform/route"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgStore returns a store on a fresh database holding schema "demo" with the platform's tables.
func pgStore(t *testing.T) *route.PGStore {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := migrate.Up(t.Context(), pool, "demo", nil, quietLogger()); err != nil {
		t.Fatal(err)
	}
	return route.NewPGStore(pool, "demo")
}

func TestPGStoreKeepsStateAuditAndDiscrepancies(t *testing.T) {
	store := pgStore(t)
	mod := splitModule(t, store, route.State{RemoteBP: 100}, route.Rule{Disabled: true})
	tbl := mod.Table()
	if _, _, err := tbl.Change(t.Context(), route.Change{Module: "demo", Method: "Fetch", RemoteBP: 2500, Shadow: true, Actor: "ann", Reason: "reads"}); err != nil {
		t.Fatal(err)
	}
	// A restart (a new table on the same store) comes back with the stored state, not the configured one.
	again := splitModule(t, store, route.State{RemoteBP: 0}, route.Rule{Disabled: true})
	def, ov := again.State()
	if def.RemoteBP != 100 || ov["Fetch"] != (route.State{RemoteBP: 2500, Shadow: true}) || len(ov) != 1 {
		t.Fatalf("state after a restart = %+v %+v", def, ov)
	}
	entries, err := again.Audit(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Actor != "ann" || entries[0].Method != "Fetch" || entries[0].RemoteBP != 2500 ||
		!entries[0].Shadow || entries[0].Module != "demo" || entries[1].Actor != "config" || entries[1].RemoteBP != 100 {
		t.Fatalf("audit = %+v", entries)
	}
	d := route.Discrepancy{Method: "Fetch", At: time.Now(), Primary: "local", RequestID: "r-1", Diff: "$.a: 1 → 2"}
	if err := store.SaveDiscrepancy(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	ds, err := again.Discrepancies(t.Context(), 10)
	if err != nil || len(ds) != 1 || ds[0].Diff != d.Diff || ds[0].Primary != "local" || ds[0].Module != "demo" {
		t.Fatalf("discrepancies = %+v, %v", ds, err)
	}
}

func TestPGStoreSerialisesConcurrentChanges(t *testing.T) {
	store := pgStore(t)
	mod := splitModule(t, store, route.State{}, route.Rule{Disabled: true})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := mod.Table().Change(context.Background(), route.Change{Module: "demo", Method: "Fetch", RemoteBP: (i + 1) * 100,
				Actor: "t", Reason: fmt.Sprint("change ", i)})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	entries, err := mod.Audit(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	// Every change saw the one before it: the audit trail is a chain.
	for i := 0; i+1 < len(entries)-1; i++ {
		if entries[i].From.RemoteBP != entries[i+1].RemoteBP {
			t.Fatalf("entry %d changed from %d but the one before set %d: changes were not serialised", entries[i].ID,
				entries[i].From.RemoteBP, entries[i+1].RemoteBP)
		}
	}
	if len(entries) != 11 || !strings.HasPrefix(entries[0].Reason, "change ") {
		t.Fatalf("%d audit entries, want 11", len(entries))
	}
}
