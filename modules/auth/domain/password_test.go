package authdomain

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// phcPattern is the exact shape Hash must produce with the default parameters.
var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestPasswordHashAndVerify(t *testing.T) {
	h := DefaultPasswordHasher()
	encoded, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !phcPattern.MatchString(encoded) {
		t.Fatalf("Hash = %q, not a default-parameter PHC argon2id string", encoded)
	}
	ok, err := h.Verify("correct horse battery staple", encoded)
	if err != nil || !ok {
		t.Fatalf("Verify(right password) = %v, %v; want true, nil", ok, err)
	}
	ok, err = h.Verify("correct horse battery stapler", encoded)
	if err != nil || ok {
		t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
	again, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if again == encoded {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestPasswordVerifyReferenceVector(t *testing.T) {
	// The argon2id example from the reference implementation (phc-winner-argon2): password "password",
	// salt "somesalt", t=2, m=65536, p=1, 32-byte key.
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := DefaultPasswordHasher()
	if ok, err := h.Verify("password", ref); err != nil || !ok {
		t.Fatalf("Verify(reference) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := h.Verify("passwore", ref); err != nil || ok {
		t.Fatalf("Verify(reference, wrong password) = %v, %v; want false, nil", ok, err)
	}
}

func TestPasswordVerifyReadsParametersFromHash(t *testing.T) {
	cheap := PasswordHasher{Memory: 64, Time: 1, Threads: 2}
	encoded, err := cheap.Hash("s3cret-password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=2$") {
		t.Fatalf("Hash = %q, want the hasher's parameters encoded", encoded)
	}
	ok, err := DefaultPasswordHasher().Verify("s3cret-password", encoded)
	if err != nil || !ok {
		t.Fatalf("default hasher Verify(cheap hash) = %v, %v; want true, nil", ok, err)
	}
}

func TestPasswordNeedsRehash(t *testing.T) {
	h := DefaultPasswordHasher()
	current, err := h.Hash("s3cret-password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	old, err := PasswordHasher{Memory: 64, Time: 1, Threads: 1}.Hash("s3cret-password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	const shortKey = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name    string
		encoded string
		want    bool
	}{
		{"current parameters", current, false},
		{"weaker parameters", old, true},
		{"other key length", shortKey, true},
		{"malformed", "not a hash", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.NeedsRehash(tt.encoded); got != tt.want {
				t.Fatalf("NeedsRehash(%q) = %v, want %v", tt.encoded, got, tt.want)
			}
		})
	}
}

func TestPasswordVerifyMalformed(t *testing.T) {
	const salt, key = "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"no leading dollar", "argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"old version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"missing version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"parameters out of order", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key},
		{"missing parameter", "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key},
		{"zero memory", "$argon2id$v=19$m=0,t=2,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key},
		{"memory overflows", "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=19456,t=65,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key},
		{"threads overflow", "$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key},
		{"plus sign", "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key},
		{"salt not base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!!$" + key},
		{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key},
		{"url-safe alphabet", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("_", 43)},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$AAAA$" + key},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$AAAAAAAA"},
		{"extra field", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$"},
		{"missing key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
	}
	h := DefaultPasswordHasher()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify("password", tt.encoded)
			if !errors.Is(err, ErrMalformedHash) || ok {
				t.Fatalf("Verify(%q) = %v, %v; want false and ErrMalformedHash", tt.encoded, ok, err)
			}
		})
	}
}

func TestPasswordZeroHasherIsUnusable(t *testing.T) {
	if _, err := (PasswordHasher{}).Hash("s3cret-password"); err == nil {
		t.Fatal("zero PasswordHasher hashed; want an error")
	}
	(PasswordHasher{}).Equalize("s3cret-password") // falls back to the defaults instead of panicking in argon2
}

func TestPasswordEqualizeCostsAsMuchAsVerify(t *testing.T) {
	h := DefaultPasswordHasher()
	encoded, err := h.Hash("s3cret-password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	// The fastest of a few runs is stable enough on a shared machine; the bounds are loose on purpose: the
	// point is that Equalize does a full argon2id derivation, not that the two match to the microsecond.
	fastest := func(f func()) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			f()
			best = min(best, time.Since(start))
		}
		return best
	}
	verify := fastest(func() {
		if _, err := h.Verify("wrong-password", encoded); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
	equalize := fastest(func() { h.Equalize("wrong-password") })
	if equalize < verify/2 || equalize > verify*2 {
		t.Fatalf("Equalize took %s, Verify %s; want them within a factor of 2", equalize, verify)
	}
}

func TestPasswordValidate(t *testing.T) {
	tests := []struct {
		name     string
		password string
		rule     string // empty when the password is acceptable
	}{
		{"empty", "", "at least 8"},
		{"7 characters", "abcdefg", "at least 8"},
		{"8 characters", "abcdefgh", ""},
		{"7 runes in 14 bytes", "ääääääa", "at least 8"},
		{"8 runes in 16 bytes", "äääääääa", ""},
		{"128 characters", strings.Repeat("a", 128), ""},
		{"128 runes in 256 bytes", strings.Repeat("ä", 128), ""},
		{"129 characters", strings.Repeat("a", 129), "at most 128"},
		{"invalid UTF-8", "abcdefgh\xff", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePassword(tt.password)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("ValidatePassword = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrPasswordPolicy) || !strings.Contains(err.Error(), tt.rule) {
				t.Fatalf("ValidatePassword = %v, want ErrPasswordPolicy naming %q", err, tt.rule)
			}
		})
	}
}
