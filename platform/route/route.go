// Package route decides, call by call, whether a module's api call (or an HTTP request the process serves as
// a gateway) is served by the module's implementation in this process or by its extracted instances over
// the bus, and measures both sides: the strangler-fig migration as configuration. A module in split mode
// sends a sticky share of its callers remote (a consistent hash of the caller, so raising the share only
// moves callers one way), can shadow read-only calls on the other side and compare the answers, and rolls
// itself back to local when a rule on the remote side's errors or latency trips. Shares change live, are
// stored in the module's schema with an audit trail, and reach every process of the application.
package route

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/observe"
)

// Side is where one call is served.
type Side uint8

const (
	// Local is the module's implementation in this process.
	Local Side = iota
	// Remote is the module's extracted instances, reached over the bus.
	Remote
)

// String names the side as metrics and the admin API show it.
func (s Side) String() string {
	if s == Remote {
		return "remote"
	}
	return "local"
}

// Other is the side s is not.
func (s Side) Other() Side { return 1 - s }

// Full is the remote share, in basis points, that sends every call remote: 100%.
const Full = 10000

// State is how a module, or one of its methods, is routed: the share of callers sent remote and whether
// read-only calls are shadowed on the side not chosen.
type State struct {
	// RemoteBP is the remote share in basis points (0 to Full): 1000 sends 10% of callers remote.
	RemoteBP int `json:"remote_bp"`
	// Shadow also calls the other side of a read-only call in the background and records any difference;
	// it never applies to a method that writes.
	Shadow bool `json:"shadow"`
}

// Percent is the remote share as a percentage.
func (s State) Percent() float64 { return float64(s.RemoteBP) / 100 }

// ErrBadPercent is returned for a share that is not a percentage with at most two decimals between 0 and 100.
var ErrBadPercent = errs.New(errs.Unprocessable, "route.bad_percent",
	"the remote share must be a percentage between 0 and 100 with at most two decimals")

// ParsePercent reads a share such as "10", "12.5" or "0.25%" into basis points.
func ParsePercent(s string) (int, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, ErrBadPercent)
	}
	return PercentBP(f)
}

// PercentBP converts a percentage to basis points, refusing one outside 0..100 or with more than two decimals.
func PercentBP(f float64) (int, error) {
	bp := math.Round(f * 100)
	if math.IsNaN(f) || f < 0 || f > 100 || math.Abs(bp-f*100) > 1e-6 {
		return 0, fmt.Errorf("%v: %w", f, ErrBadPercent)
	}
	return int(bp), nil
}

// Bucket places a routing key in 0..Full-1, the same for every process and restart: the FNV-1a hash of the
// module and key. A key goes remote when its bucket is below the remote share, so raising the share only
// moves keys from local to remote, and each module moves its own slice of callers.
func Bucket(module, key string) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(module))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	return int(h.Sum64() % Full)
}

// Key is the routing key of a call that declares none: the caller's user id, else the request id. A call
// with neither (a background job) gets "" and is routed at random.
func Key(ctx context.Context) string {
	if p, ok := identity.From(ctx); ok {
		return p.UserID
	}
	return observe.RequestID(ctx)
}

// pick chooses the side for a call with routing key key under state s (module name salts the hash).
func pick(module string, s State, key string) Side {
	switch {
	case s.RemoteBP <= 0:
		return Local
	case s.RemoteBP >= Full:
		return Remote
	case key == "":
		if rand.IntN(Full) < s.RemoteBP {
			return Remote
		}
		return Local
	case Bucket(module, key) < s.RemoteBP:
		return Remote
	default:
		return Local
	}
}

// Failed reports whether err counts against the side that returned it: a failure of the module or the
// transport (internal, unavailable, timed out, or an error without a client-safe kind), not a business
// answer such as not found or declined, and not the caller giving up.
func Failed(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	e, ok := errs.As(err)
	return !ok || e.Kind == errs.Internal || e.Kind == errs.Unavailable
}
