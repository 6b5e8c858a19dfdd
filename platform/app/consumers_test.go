package app

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/inbox"
)

func TestInboxSectionOverridesTheRetryPolicy(t *testing.T) {
	cfg, err := LoadConfig("", []string{"SEAM_INBOX_MAX_DELIVER=3", "SEAM_INBOX_RETRY_DELAY=50ms"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sub := cfg.Inbox.apply(inbox.Subscription{Name: "x", MaxDeliver: 10, Backoff: []time.Duration{time.Second, time.Minute}})
	if sub.MaxDeliver != 3 || !slices.Equal(sub.Backoff, []time.Duration{50 * time.Millisecond}) {
		t.Fatalf("subscription = %+v", sub)
	}
	if kept := (InboxConfig{}).apply(inbox.Subscription{MaxDeliver: 7, Backoff: []time.Duration{time.Second}}); kept.MaxDeliver != 7 ||
		!slices.Equal(kept.Backoff, []time.Duration{time.Second}) {
		t.Fatalf("an empty section changed the subscription: %+v", kept)
	}

	if _, err := LoadConfig("", []string{"SEAM_INBOX_MAX_DELIVER=-2"}); err == nil || !strings.Contains(err.Error(), "inbox.max_deliver") {
		t.Fatalf("LoadConfig = %v, want an error naming inbox.max_deliver", err)
	}
}
