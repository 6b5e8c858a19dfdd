package outbox

// LockKey exposes the relay lock's key to the tests.
var LockKey = lockKey
