// Package authdomain holds the auth module's business logic: accounts, password hashing, token issuing and
// verification, and login throttling.
package authdomain
