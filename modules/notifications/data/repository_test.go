package notificationsdata_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	notificationsdata "github.com/seamkit/seam/modules/notifications/data"
	notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := migrate.Up(context.Background(), pool, "notifications", sqlfs.Migrations("notifications"), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return pool
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func message(userID string, at time.Time) notificationsdomain.Message {
	eventID := uuid.NewString()
	return notificationsdomain.Message{
		ID:        notificationsdomain.MessageID(eventID),
		UserID:    userID,
		Recipient: "alice@example.com",
		Template:  notificationsapi.TemplateWelcome,
		Subject:   "Welcome to Seam",
		Body:      "Hello",
		EventID:   eventID,
		Channel:   "log",
		Status:    notificationsapi.StatusSent,
		CreatedAt: at,
		SentAt:    &at,
	}
}

func TestRecipientKeepsTheNewestAddress(t *testing.T) {
	ctx := context.Background()
	repo := notificationsdata.NewRepository(newPool(t))
	user := uuid.NewString()
	if _, err := repo.Recipient(ctx, user); !errors.Is(err, notificationsdomain.ErrRecipientNotFound) {
		t.Fatalf("unknown recipient: err = %v", err)
	}
	if _, err := repo.Recipient(ctx, "not-a-uuid"); !errors.Is(err, notificationsdomain.ErrRecipientNotFound) {
		t.Fatalf("malformed id: err = %v", err)
	}
	steps := []struct {
		email string
		at    time.Time
		want  string
	}{
		{"first@example.com", base, "first@example.com"},
		{"newer@example.com", base.Add(time.Hour), "newer@example.com"},
		{"older@example.com", base.Add(time.Minute), "newer@example.com"},
	}
	for _, s := range steps {
		if err := repo.SaveRecipient(ctx, notificationsdomain.Recipient{UserID: user, Email: s.email, UpdatedAt: s.at}); err != nil {
			t.Fatal(err)
		}
		got, err := repo.Recipient(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != s.want || got.UserID != user {
			t.Fatalf("after saving %s: recipient = %+v, want %s", s.email, got, s.want)
		}
	}
}

func TestMessagesStoreOncePerEventAndListNewestFirst(t *testing.T) {
	ctx := context.Background()
	repo := notificationsdata.NewRepository(newPool(t))
	alice, bob := uuid.NewString(), uuid.NewString()
	var want []notificationsdomain.Message
	for i := range 3 {
		m := message(alice, base.Add(time.Duration(i)*time.Minute))
		ok, err := repo.InsertMessage(ctx, m)
		if err != nil || !ok {
			t.Fatalf("insert: %v %v", ok, err)
		}
		want = append([]notificationsdomain.Message{m}, want...)
	}
	if ok, err := repo.InsertMessage(ctx, message(bob, base)); err != nil || !ok {
		t.Fatalf("insert bob's: %v %v", ok, err)
	}
	again := want[0]
	again.ID = uuid.NewString()
	if ok, err := repo.InsertMessage(ctx, again); err != nil || ok {
		t.Fatalf("second message for one event: inserted %v, err %v; want false, nil", ok, err)
	}

	got, err := repo.ListMessages(ctx, alice, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alice's messages (-want +got):\n%s", diff)
	}
	if got, _ := repo.ListMessages(ctx, alice, 2); len(got) != 2 || got[0].ID != want[0].ID {
		t.Errorf("limit 2 gave %d messages", len(got))
	}
	if got, err := repo.ListMessages(ctx, "not-a-uuid", 10); err != nil || len(got) != 0 {
		t.Errorf("malformed user id: %v %v", got, err)
	}

	if err := repo.MarkFailed(ctx, want[0].ID); err != nil {
		t.Fatal(err)
	}
	got, _ = repo.ListMessages(ctx, alice, 1)
	if got[0].Status != notificationsapi.StatusFailed || got[0].SentAt != nil {
		t.Errorf("after MarkFailed: %+v", got[0])
	}
	if err := repo.MarkFailed(ctx, uuid.NewString()); err == nil {
		t.Error("MarkFailed of an unknown message succeeded")
	}
}

func TestMessageConstraints(t *testing.T) {
	ctx := context.Background()
	repo := notificationsdata.NewRepository(newPool(t))
	user := uuid.NewString()
	tests := map[string]func(*notificationsdomain.Message){
		"sent without sent_at":     func(m *notificationsdomain.Message) { m.SentAt = nil },
		"failed with sent_at":      func(m *notificationsdomain.Message) { m.Status = notificationsapi.StatusFailed },
		"unknown status":           func(m *notificationsdomain.Message) { m.Status = "queued" },
		"unknown template":         func(m *notificationsdomain.Message) { m.Template = "spam" },
		"unknown channel":          func(m *notificationsdomain.Message) { m.Channel = "sms" },
		"sent without a recipient": func(m *notificationsdomain.Message) { m.Recipient = "" },
		"empty subject":            func(m *notificationsdomain.Message) { m.Subject = "" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			m := message(user, base)
			mutate(&m)
			_, err := repo.InsertMessage(ctx, m)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
				t.Fatalf("err = %v, want a check violation", err)
			}
		})
	}
	t.Run("malformed ids", func(t *testing.T) {
		m := message(user, base)
		m.EventID = "nope"
		if _, err := repo.InsertMessage(ctx, m); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestInTxRollsBackWithTheTransaction(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	user := uuid.NewString()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	repo := notificationsdata.InTx(tx)
	if err := repo.SaveRecipient(ctx, notificationsdomain.Recipient{UserID: user, Email: "a@example.com", UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.InsertMessage(ctx, message(user, base)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	outside := notificationsdata.NewRepository(pool)
	if got, _ := outside.ListMessages(ctx, user, 10); len(got) != 0 {
		t.Fatalf("rolled-back message visible: %+v", got)
	}
	if _, err := outside.Recipient(ctx, user); !errors.Is(err, notificationsdomain.ErrRecipientNotFound) {
		t.Fatalf("rolled-back recipient visible: %v", err)
	}
}
