package route_test

import (
	"testing"

	"github.com/seamkit/seam/platform/route"
)

func BenchmarkBeginEndLocal(b *testing.B) {
	tbl := route.NewTable(quietLogger(), nil)
	mod, err := tbl.Add(route.ModuleConfig{Name: "demo", Mode: route.ModeLocal, Methods: demoMethods})
	if err != nil {
		b.Fatal(err)
	}
	m := mod.Method("Fetch")
	ctx := userCtx("u")
	b.ReportAllocs()
	for b.Loop() {
		m.Begin(ctx, "").End(ctx, nil)
	}
}

func BenchmarkEnterEndLocal(b *testing.B) {
	m := localModule(b).Method("Fetch")
	ctx := userCtx("u")
	b.ReportAllocs()
	for b.Loop() {
		routed(ctx, m, nil)
	}
}
