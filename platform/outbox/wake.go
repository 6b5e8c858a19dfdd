package outbox

import "sync"

// running holds the wake channels of the relays running in this process, by schema, for WakeRelays.
var running = struct {
	sync.RWMutex
	relays map[string]map[chan struct{}]struct{}
}{relays: map[string]map[chan struct{}]struct{}{}}

// WakeRelays tells the relays of schema's outbox that run in this process to relay now: a producer calls it
// after committing a transaction that enqueued events, so they are published within milliseconds rather than
// at the next poll. It never blocks and does nothing when no relay of schema runs here; relays in other
// processes find the events at their next poll (RelayOptions.PollInterval). A producer that does not call it
// (or crashes before it does) loses nothing but latency.
func WakeRelays(schema string) {
	running.RLock()
	defer running.RUnlock()
	for wake := range running.relays[schema] {
		signal(wake)
	}
}

// register makes WakeRelays(schema) signal wake, until unregister.
func register(schema string, wake chan struct{}) {
	running.Lock()
	defer running.Unlock()
	if running.relays[schema] == nil {
		running.relays[schema] = map[chan struct{}]struct{}{}
	}
	running.relays[schema][wake] = struct{}{}
}

// unregister undoes register.
func unregister(schema string, wake chan struct{}) {
	running.Lock()
	defer running.Unlock()
	delete(running.relays[schema], wake)
	if len(running.relays[schema]) == 0 {
		delete(running.relays, schema)
	}
}

// signal wakes a relay without blocking: one pending wake-up stands for any number.
func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
