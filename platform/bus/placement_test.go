package bus

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestPlacementPendingRecognisesAFormingCluster(t *testing.T) {
	forming := fmt.Errorf("create stream: %w", &jetstream.APIError{Code: 400, ErrorCode: errCodeNoSuitablePeers,
		Description: "no suitable peers for placement"})
	if !placementPending(forming) {
		t.Error("no suitable peers for placement: not recognised")
	}
	for _, err := range []error{
		&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest},
		errors.New("no suitable peers for placement"),
		nil,
	} {
		if placementPending(err) {
			t.Errorf("%v: taken for a forming cluster", err)
		}
	}
}
