package billingdata

import billingdomain "github.com/seamkit/seam/modules/billing/domain"

// SeverHold cuts the network connection of hold (from HoldIdempotencyKey) without a word to the server, as
// the kernel does when the holding process is killed.
func SeverHold(hold billingdomain.KeyHold) error {
	return hold.(*keyHold).conn.Conn().PgConn().Conn().Close()
}

// HoldPID returns the server process id of the session hold runs on.
func HoldPID(hold billingdomain.KeyHold) int64 {
	return int64(hold.(*keyHold).conn.Conn().PgConn().PID())
}
