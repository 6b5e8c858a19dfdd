package billing

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingdata "github.com/seamkit/seam/modules/billing/data"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/saga"
)

// upgrades wires plan upgrades: billing's saga runner (resuming interrupted sagas in the background from
// start to stop) and the Upgrades service that runs the plan-upgrade saga on it.
var upgrades = fx.Provide(
	fx.Private,
	newSagaRunner,
	fx.Annotate(billingdata.NewUpgradeStore, fx.As(new(billingdomain.UpgradeStore))),
	newUpgrades,
)

// newSagaRunner returns billing's saga runner; its resumer runs from start (after the module's
// migrations, whose hook comes first) until stop.
func newSagaRunner(lc fx.Lifecycle, pool *pgxpool.Pool, logger *slog.Logger) (*saga.Runner, error) {
	r, err := saga.NewRunner(pool, Name, logger, saga.Options{})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error { r.StartResumer(); return nil },
		OnStop:  r.StopResumer,
	})
	return r, nil
}

func newUpgrades(r *saga.Runner, store billingdomain.UpgradeStore, provider billingdomain.PaymentProvider,
	auth authapi.Auth, logger *slog.Logger) (*billingdomain.Upgrades, error) {
	return billingdomain.NewUpgrades(r, store, provider, auth, logger)
}

// upgradeRequest is the body of POST /plan-upgrade.
type upgradeRequest struct {
	Plan          string `json:"plan"`
	PaymentMethod string `json:"payment_method"`
}

// Validate reports every invalid field.
func (u upgradeRequest) Validate() error {
	return billingdomain.ValidateUpgrade(u.Plan, u.PaymentMethod)
}

// upgradePlan starts the caller's plan upgrade (or returns the one its Idempotency-Key started): 202 with
// the upgrade as it stands, normally ended (completed, or compensated with the charge refunded).
func (h handlers) upgradePlan(w http.ResponseWriter, r *http.Request) error {
	caller, err := httpx.Caller(r)
	if err != nil {
		return err
	}
	key := r.Header.Get(IdempotencyKeyHeader)
	if err := billingdomain.ValidateIdempotencyKey(key); err != nil {
		return err
	}
	var req upgradeRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	up, err := h.upgrades.Upgrade(r.Context(), billingdomain.UpgradeRequest{
		UserID:         caller.UserID,
		Plan:           req.Plan,
		PaymentMethod:  req.PaymentMethod,
		IdempotencyKey: key,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/plan-upgrades/"+up.ID)
	return httpx.WriteJSON(w, http.StatusAccepted, up)
}

// getPlanUpgrade returns one of the caller's plan upgrades; anyone else's is 404.
func (h handlers) getPlanUpgrade(w http.ResponseWriter, r *http.Request) error {
	caller, err := httpx.Caller(r)
	if err != nil {
		return err
	}
	up, err := h.upgrades.GetUpgrade(r.Context(), caller.UserID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, up)
}
