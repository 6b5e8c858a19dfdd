package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/fx"

	"github.com/seamkit/seam/modules/auth"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/config"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConfigDefaults(t *testing.T) {
	var c auth.Config
	if err := config.Decode(nil, &c, "SEAM_AUTH", "modules.auth", nil); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := auth.Config{Issuer: "seam", Audience: "seam", TokenTTL: time.Hour, AdminEmail: "admin@seam.local",
		TokenCacheTTL: auth.DefaultTokenCacheTTL, TokenCacheSize: auth.DefaultTokenCacheSize}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
	}
}

func TestConfigValidation(t *testing.T) {
	seed := base64.StdEncoding.EncodeToString(make([]byte, ed25519.SeedSize))
	cases := []struct {
		env     string
		wantKey string // "" means valid
	}{
		{"SEAM_AUTH_ISSUER= ", "issuer:"},
		{"SEAM_AUTH_AUDIENCE= ", "audience:"},
		{"SEAM_AUTH_TOKEN_TTL=59s", "token_ttl:"},
		{"SEAM_AUTH_TOKEN_TTL=25h", "token_ttl:"},
		{"SEAM_AUTH_TOKEN_TTL=-1h", "token_ttl:"},
		{"SEAM_AUTH_TOKEN_TTL=1m", ""},
		{"SEAM_AUTH_TOKEN_TTL=24h", ""},
		{"SEAM_AUTH_ADMIN_EMAIL=not-an-email", "admin_email:"},
		{"SEAM_AUTH_ADMIN_EMAIL=Root <root@example.test>", "admin_email:"},
		{"SEAM_AUTH_ADMIN_EMAIL=root@example.test", ""},
		{"SEAM_AUTH_ADMIN_PASSWORD=short", "admin_password:"},
		{"SEAM_AUTH_ADMIN_PASSWORD=long enough password", ""},
		{"SEAM_AUTH_SIGNING_KEY_SEED=not base64!", "signing_key_seed:"},
		{"SEAM_AUTH_SIGNING_KEY_SEED=" + base64.StdEncoding.EncodeToString(make([]byte, 16)), "signing_key_seed:"},
		{"SEAM_AUTH_SIGNING_KEY_SEED=" + base64.RawStdEncoding.EncodeToString(make([]byte, 31)), "signing_key_seed:"},
		{"SEAM_AUTH_SIGNING_KEY_SEED=" + seed, ""},
		{"SEAM_AUTH_TOKEN_CACHE_TTL=999ms", "token_cache_ttl:"},
		{"SEAM_AUTH_TOKEN_CACHE_TTL=-1s", "token_cache_ttl:"},
		{"SEAM_AUTH_TOKEN_CACHE_TTL=6m", "token_cache_ttl:"},
		{"SEAM_AUTH_TOKEN_CACHE_TTL=1s", ""},
		{"SEAM_AUTH_TOKEN_CACHE_TTL=5m", ""},
		{"SEAM_AUTH_TOKEN_CACHE_SIZE=-1", "token_cache_size:"},
		{"SEAM_AUTH_TOKEN_CACHE_SIZE=1000001", "token_cache_size:"},
		{"SEAM_AUTH_TOKEN_CACHE_SIZE=1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			var c auth.Config
			err := config.Decode(nil, &c, "SEAM_AUTH", "modules.auth", []string{tc.env})
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("valid setting refused: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "modules.auth."+tc.wantKey) {
				t.Fatalf("error %v, want one starting with modules.auth.%s", err, tc.wantKey)
			}
			if _, value, _ := strings.Cut(tc.env, "="); strings.Contains(tc.env, "SEED") && strings.Contains(err.Error(), value) {
				t.Fatalf("error echoes the secret: %v", err)
			}
		})
	}
}

func TestConfigMasksSecrets(t *testing.T) {
	c := auth.Config{SigningKeySeed: "c2VjcmV0", AdminPassword: "hunter2hunter2"}
	out, err := json.Marshal(config.Redacted(c))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "c2VjcmV0") || strings.Contains(string(out), "hunter2") {
		t.Fatalf("secrets in the logged configuration: %s", out)
	}
}

// syncBuffer collects the application's log lines from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// instance is one running process with only the auth module, on a test database.
type instance struct {
	handler http.Handler
	logs    *syncBuffer
	stop    func()
}

// start runs the auth module in an fx application like the monolith's, with its HTTP handler reachable
// in-process.
func start(t *testing.T, dbURL, dataDir string, env ...string) instance {
	t.Helper()
	environ := append([]string{
		"SEAM_DATA_DIR=" + dataDir,
		"SEAM_DATABASE_URL=" + dbURL,
		"SEAM_BUS_PORT=-1",
		"SEAM_BUS_SYNC_ALWAYS=false",
		"SEAM_HTTP_ADDR=127.0.0.1:0",
		"SEAM_LOG_LEVEL=info",
	}, env...)
	cfg, err := app.LoadConfig("", environ)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	var srv *httpx.Server
	probe := app.Module{Name: "probe", Options: fx.Populate(&srv)}
	a, _, err := app.New(cfg, logs, auth.Module, probe)
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, logs)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	t.Cleanup(stop)
	return instance{handler: srv.Handler(), logs: logs, stop: stop}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (in instance) do(t *testing.T, method, path, token, contentType, body string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	in.handler.ServeHTTP(rec, req)
	r := response{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &r.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %s", method, path, rec.Body)
		}
	}
	return r
}

func (in instance) post(t *testing.T, path, body string) response {
	t.Helper()
	return in.do(t, http.MethodPost, path, "", "application/json", body)
}

func creds(email, password string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return string(b)
}

func (in instance) login(t *testing.T, email, password string) string {
	t.Helper()
	r := in.post(t, "/api/auth/login", creds(email, password))
	if r.status != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, r.status, r.raw)
	}
	return r.body["access_token"].(string)
}

func expectProblem(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.body["code"] != code || r.header.Get("Content-Type") != httpx.ProblemContentType {
		t.Fatalf("got %d %s (%s), want %d %s", r.status, r.raw, r.header.Get("Content-Type"), status, code)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestModule(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	dataDir := t.TempDir()
	in := start(t, dbURL, dataDir)

	// The first start created the admin with a generated password, written to a private file and never
	// logged.
	pwFile := filepath.Join(dataDir, auth.InitialAdminPasswordFile)
	info, err := os.Stat(pwFile)
	if err != nil {
		t.Fatalf("initial admin password file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v, want 0600", info.Mode().Perm())
	}
	content, _ := os.ReadFile(pwFile)
	adminPassword := strings.TrimSuffix(string(content), "\n")
	if len(adminPassword) != authdomain.GeneratedPasswordLength {
		t.Fatalf("generated password %q", adminPassword)
	}
	logs := in.logs.String()
	if strings.Contains(logs, adminPassword) {
		t.Fatal("the generated admin password is in the log")
	}
	warning := "initial admin password written to " + pwFile
	if strings.Count(logs, warning) != 1 || !strings.Contains(logs, `"level":"WARN"`) {
		t.Fatalf("want one WARN %q in the log:\n%s", warning, logs)
	}
	adminToken := in.login(t, "admin@seam.local", adminPassword)
	if me := in.do(t, http.MethodGet, "/api/auth/me", adminToken, "", ""); me.status != http.StatusOK || me.body["role"] != "admin" {
		t.Fatalf("admin /me: %d %s", me.status, me.raw)
	}

	var alice response
	t.Run("signup", func(t *testing.T) {
		alice = in.post(t, "/api/auth/signup", creds("  Alice@Example.TEST", "correct horse battery"))
		if alice.status != http.StatusCreated {
			t.Fatalf("signup: %d %s", alice.status, alice.raw)
		}
		if diff := cmp.Diff([]string{"created_at", "email", "id", "plan", "role"}, keys(alice.body)); diff != "" {
			t.Fatalf("signup body keys (-want +got):\n%s", diff)
		}
		if alice.body["email"] != "alice@example.test" || alice.body["role"] != "user" || alice.body["plan"] != "free" {
			t.Fatalf("signup body %s", alice.raw)
		}
		if _, err := time.Parse(time.RFC3339Nano, alice.body["created_at"].(string)); err != nil {
			t.Fatalf("created_at: %v", err)
		}
	})

	t.Run("signup bad input", func(t *testing.T) {
		big := `{"email":"x@example.test","password":"` + strings.Repeat("a", 2<<20) + `"}`
		cases := []struct {
			name, contentType, body string
			status                  int
			code                    string
			fields                  []string
		}{
			{"duplicate", "application/json", creds("ALICE@example.test", "another password"), 409, "auth.email_taken", nil},
			{"malformed", "application/json", `{"email":`, 400, "http.malformed_body", nil},
			{"unknown field", "application/json", `{"email":"n@example.test","password":"long enough pw","role":"admin"}`, 400, "http.malformed_body", nil},
			{"wrong type", "application/json", `{"email":42,"password":"long enough pw"}`, 400, "http.malformed_body", nil},
			{"array", "application/json", `[]`, 400, "http.malformed_body", nil},
			{"missing", "application/json", `{}`, 422, "validation_failed", []string{"email", "password"}},
			{"null", "application/json", `null`, 422, "validation_failed", []string{"email", "password"}},
			{"bad email", "application/json", creds("not-an-email", "long enough pw"), 422, "validation_failed", []string{"email"}},
			{"display name", "application/json", creds("N <n@example.test>", "long enough pw"), 422, "validation_failed", []string{"email"}},
			{"short password", "application/json", creds("n@example.test", "short"), 422, "validation_failed", []string{"password"}},
			{"content type", "text/plain", creds("n@example.test", "long enough pw"), 415, "http.unsupported_media_type", nil},
			{"oversized", "application/json", big, 413, "http.body_too_large", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := in.do(t, http.MethodPost, "/api/auth/signup", "", tc.contentType, tc.body)
				expectProblem(t, r, tc.status, tc.code)
				if tc.fields != nil {
					var got []string
					for _, f := range r.body["errors"].([]any) {
						got = append(got, f.(map[string]any)["field"].(string))
					}
					if diff := cmp.Diff(tc.fields, got); diff != "" {
						t.Fatalf("fields (-want +got):\n%s", diff)
					}
				}
			})
		}
		// None of them created an account.
		expectProblem(t, in.post(t, "/api/auth/login", creds("n@example.test", "long enough pw")), 401, "auth.invalid_credentials")
	})

	var aliceToken string
	t.Run("login", func(t *testing.T) {
		r := in.post(t, "/api/auth/login", creds("alice@example.test", "correct horse battery"))
		if r.status != http.StatusOK {
			t.Fatalf("login: %d %s", r.status, r.raw)
		}
		if diff := cmp.Diff([]string{"access_token", "expires_at", "expires_in", "token_type"}, keys(r.body)); diff != "" {
			t.Fatalf("login body keys (-want +got):\n%s", diff)
		}
		if r.body["token_type"] != "Bearer" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("login: %s %v", r.raw, r.header)
		}
		if in := r.body["expires_in"].(float64); in < 3598 || in > 3600 {
			t.Fatalf("expires_in %v, want about 3600", in)
		}
		expires, err := time.Parse(time.RFC3339, r.body["expires_at"].(string))
		if err != nil || time.Until(expires) < 59*time.Minute || time.Until(expires) > time.Hour {
			t.Fatalf("expires_at %v: %v", r.body["expires_at"], err)
		}
		aliceToken = r.body["access_token"].(string)
	})

	t.Run("login failures", func(t *testing.T) {
		wrong := in.post(t, "/api/auth/login", creds("alice@example.test", "wrong password"))
		unknown := in.post(t, "/api/auth/login", creds("nobody@example.test", "wrong password"))
		for _, r := range []response{wrong, unknown} {
			expectProblem(t, r, 401, "auth.invalid_credentials")
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		}
		if wrong.body["detail"] != unknown.body["detail"] {
			t.Fatalf("wrong password and unknown email differ: %s / %s", wrong.raw, unknown.raw)
		}
		expectProblem(t, in.post(t, "/api/auth/login", `{}`), 422, "validation_failed")
		expectProblem(t, in.post(t, "/api/auth/login", `[]`), 400, "http.malformed_body")
	})

	t.Run("me", func(t *testing.T) {
		r := in.do(t, http.MethodGet, "/api/auth/me", aliceToken, "", "")
		if r.status != http.StatusOK {
			t.Fatalf("me: %d %s", r.status, r.raw)
		}
		if diff := cmp.Diff(alice.body, r.body); diff != "" {
			t.Fatalf("me (-signup +me):\n%s", diff)
		}
		expectProblem(t, in.do(t, http.MethodGet, "/api/auth/me", "", "", ""), 401, "auth.unauthenticated")
		expectProblem(t, in.do(t, http.MethodGet, "/api/auth/me", "not.a.token", "", ""), 401, "auth.invalid_token")
		parts := strings.Split(aliceToken, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		forged := strings.Replace(string(payload), `"role":"user"`, `"role":"admin"`, 1)
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
		expectProblem(t, in.do(t, http.MethodGet, "/api/auth/me", tampered, "", ""), 401, "auth.invalid_token")
	})

	t.Run("throttling", func(t *testing.T) {
		if r := in.post(t, "/api/auth/signup", creds("victim@example.test", "correct horse battery")); r.status != 201 {
			t.Fatalf("signup: %d %s", r.status, r.raw)
		}
		th := authdomain.DefaultThrottle()
		for i := range th.MaxFailures {
			if r := in.post(t, "/api/auth/login", creds("victim@example.test", "wrong password")); r.status != 401 {
				t.Fatalf("failure %d: %d %s", i+1, r.status, r.raw)
			}
		}
		for _, pw := range []string{"wrong password", "correct horse battery"} {
			r := in.post(t, "/api/auth/login", creds("victim@example.test", pw))
			expectProblem(t, r, 429, "auth.too_many_attempts")
			secs, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || secs < 1 || secs > int(th.Lockout.Seconds()) {
				t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}
		in.login(t, "alice@example.test", "correct horse battery")
	})

	// A restart on the same database creates no second admin; with a pinned key, tokens signed by the
	// stored key still verify and new ones use the pinned key.
	in.stop()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	pinned, err := authdomain.SigningKeyFromSeed(seed, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	again := start(t, dbURL, dataDir, "SEAM_AUTH_SIGNING_KEY_SEED="+base64.StdEncoding.EncodeToString(seed))
	if strings.Contains(again.logs.String(), "initial admin password") {
		t.Fatal("the restart created another admin")
	}
	if r := again.do(t, http.MethodGet, "/api/auth/me", aliceToken, "", ""); r.status != http.StatusOK {
		t.Fatalf("old token after restart: %d %s", r.status, r.raw)
	}
	newToken := again.login(t, "alice@example.test", "correct horse battery")
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(newToken, ".")[0])
	if !strings.Contains(string(header), pinned.ID) {
		t.Fatalf("new token header %s does not name the pinned key %s", header, pinned.ID)
	}
}
