// Command verify-identity is a minimal engine that trusts the Nixflex gateway's identity
// header (X-Nixflex-Identity), with go-jose and net/http:
//
//	verify-identity -jwks jwks.json [-port 0]
//
// It serves every request: 200 {"account_id":…,"key_id":…,"request_id":…} when the header is
// valid for this method and path and its jti is new, otherwise exactly the gateway's 401
// (SPEC §3) with the reason on stderr only ("rejected: …"). First stdout line:
// "listening http://127.0.0.1:PORT". In your engine, wrap every handler in RequireIdentity (or
// call VerifyIdentity with r.Method and RequestTargetPath(r.RequestURI): the path as it arrived,
// not percent-decoded, not cleaned). docs/engine-integration.md explains each check and the
// go-jose v4 variant.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	jose "gopkg.in/square/go-jose.v2"
)

const (
	identityTyp   = "nixflex-identity+jwt"
	maxLifetimeS  = 60
	leewayS       = 5
	defaultIssuer = "https://api.nixflex.com"
	defaultAud    = "nixflex-engine"
)

// UnauthorizedBody is the gateway's 401 body (SPEC §3), byte for byte: the client never learns
// which check failed.
const UnauthorizedBody = `{"error":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid or missing API key"}}`

// AuthChallenge is the gateway's WWW-Authenticate value (SPEC §3).
const AuthChallenge = `Bearer realm="api.nixflex.com"`

// An absolute-form request target (RFC 9112 §3.2.2): scheme "://" authority, then the path.
var absoluteForm = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*`)

// RequestTargetPath is the path of a raw request target (r.RequestURI) without the query, as
// the gateway signed it: "//v1/reports?x" -> "//v1/reports", "http://host/v1/reports" ->
// "/v1/reports". Not r.URL.Path (decoded) and not behind http.ServeMux, which redirects "//".
func RequestTargetPath(target string) string {
	path := target
	if !strings.HasPrefix(path, "/") {
		if loc := absoluteForm.FindStringIndex(path); loc != nil {
			path = path[loc[1]:]
			if path == "" || strings.HasPrefix(path, "?") {
				path = "/" + path
			}
		}
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i]
	}
	return path
}

// ReplayGuard remembers each used jti until its token expires (plus the skew), at most
// maxEntries at once (the oldest is dropped first), so a captured header works for one request
// only. Several engine instances need one shared store instead, e.g. Redis
// "SET nixflex:jti:<jti> 1 PXAT <expiresMs> NX" (first use when it answers OK).
type ReplayGuard struct {
	mu         sync.Mutex
	expiry     map[string]time.Time
	order      []seen // insertion order: every token lives the same 60 s, so about oldest first
	maxEntries int
}

type seen struct {
	jti       string
	expiresAt time.Time
}

// NewReplayGuard makes an in-memory guard holding at most maxEntries jtis.
func NewReplayGuard(maxEntries int) *ReplayGuard {
	return &ReplayGuard{expiry: map[string]time.Time{}, maxEntries: maxEntries}
}

func (g *ReplayGuard) dropOldest() {
	oldest := g.order[0]
	g.order = g.order[1:]
	if g.expiry[oldest.jti].Equal(oldest.expiresAt) {
		delete(g.expiry, oldest.jti)
	}
}

// Claim records the first use of jti and reports true; false while an earlier use is remembered.
func (g *ReplayGuard) Claim(jti string, expiresAt time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for len(g.order) > 0 && !g.order[0].expiresAt.After(now) {
		g.dropOldest()
	}
	if known, ok := g.expiry[jti]; ok && known.After(now) {
		return false
	}
	for len(g.expiry) >= g.maxEntries && len(g.order) > 0 {
		g.dropOldest()
	}
	g.expiry[jti] = expiresAt
	g.order = append(g.order, seen{jti, expiresAt})
	return true
}

// The algorithm is pinned per key (the JWK's "alg"), never taken from the token alone.
var allowedAlgs = map[string]bool{string(jose.EdDSA): true, string(jose.ES256): true}

// Identity is who the gateway says is calling.
type Identity struct {
	AccountID string `json:"account_id"`
	KeyID     string `json:"key_id"`
	RequestID string `json:"request_id"`
}

type identityClaims struct {
	Iss   string          `json:"iss"`
	Aud   json.RawMessage `json:"aud"`
	Sub   string          `json:"sub"`
	KeyID string          `json:"key_id"`
	Iat   *float64        `json:"iat"`
	Exp   *float64        `json:"exp"`
	Jti   string          `json:"jti"`
	Htm   string          `json:"htm"`
	Htu   string          `json:"htu"`
}

// audienceContains accepts "aud" as a string or an array of strings (RFC 7519 §4.1.3).
func audienceContains(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

// VerifyIdentity checks the header value against the gateway's keys and the request the
// engine received (path without the query). In production, load keys from
// https://api.nixflex.com/.well-known/jwks.json, cache them, and refetch once when a token
// names an unknown kid: that is how signing-key rotation reaches the engine.
// The jti is claimed last, so only a token valid for this very request uses it up.
func VerifyIdentity(token string, keys *jose.JSONWebKeySet, method, path, issuer, audience string, replay *ReplayGuard, now time.Time) (*Identity, error) {
	if token == "" || strings.Contains(token, ",") {
		return nil, errors.New("no single identity header")
	}
	// Compact serialization only: go-jose v2's ParseSigned also accepts the JSON form.
	if strings.Count(token, ".") != 2 {
		return nil, errors.New("not a compact JWS")
	}
	jws, err := jose.ParseSigned(token)
	if err != nil {
		return nil, fmt.Errorf("not a JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("expected exactly one signature")
	}
	header := jws.Signatures[0].Protected
	if !allowedAlgs[header.Algorithm] {
		return nil, fmt.Errorf("algorithm %q is not allowed", header.Algorithm)
	}
	if typ, _ := header.ExtraHeaders[jose.HeaderType].(string); typ != identityTyp {
		return nil, errors.New("wrong typ")
	}
	found := keys.Key(header.KeyID)
	if len(found) != 1 {
		return nil, errors.New("unknown kid (refetch the JWKS once, then reject)")
	}
	if found[0].Algorithm != header.Algorithm {
		return nil, errors.New("token alg does not match the key's alg")
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		return nil, errors.New("bad signature")
	}

	var c identityClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("claims are not a JSON object")
	}
	if c.Iss != issuer {
		return nil, errors.New("wrong iss")
	}
	if !audienceContains(c.Aud, audience) {
		return nil, errors.New("wrong aud")
	}
	if c.Iat == nil || c.Exp == nil {
		return nil, errors.New("iat and exp are required")
	}
	unix := float64(now.Unix())
	if unix > *c.Exp+leewayS {
		return nil, errors.New("token expired")
	}
	if *c.Exp-*c.Iat > maxLifetimeS {
		return nil, errors.New("token lives longer than 60 s")
	}
	if c.Sub == "" || c.KeyID == "" || c.Jti == "" {
		return nil, errors.New("sub, key_id and jti are required")
	}
	if c.Htm != strings.ToUpper(method) || c.Htu != path {
		return nil, errors.New("token was issued for another method or path")
	}
	expiresAt := time.Unix(int64(*c.Exp)+leewayS, 0)
	if !replay.Claim(c.Jti, expiresAt) {
		return nil, errors.New("jti already used: a replayed header")
	}
	return &Identity{AccountID: c.Sub, KeyID: c.KeyID, RequestID: c.Jti}, nil
}

type identityKey struct{}

// RequireIdentity verifies every request before next runs and puts the Identity in the context;
// anything else gets the gateway's 401, the reason on stderr only.
func RequireIdentity(keys *jose.JSONWebKeySet, issuer, audience string, replay *ReplayGuard, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if values := r.Header.Values("X-Nixflex-Identity"); len(values) == 1 {
			token = values[0] // none, or two: refused alike
		}
		identity, err := VerifyIdentity(token, keys, r.Method, RequestTargetPath(r.RequestURI), issuer, audience, replay, time.Now())
		if err != nil {
			fmt.Fprintln(os.Stderr, "rejected:", err)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", AuthChallenge)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(UnauthorizedBody))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, identity)))
	})
}

func main() {
	jwksPath := flag.String("jwks", "", "path to the gateway's JWKS document")
	port := flag.Int("port", 0, "port on 127.0.0.1; 0 picks a free one")
	issuer := flag.String("issuer", defaultIssuer, "expected iss")
	audience := flag.String("audience", defaultAud, "expected aud")
	flag.Parse()
	if *jwksPath == "" {
		flag.Usage()
		os.Exit(2)
	}

	raw, err := os.ReadFile(*jwksPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &keys); err != nil {
		fmt.Fprintln(os.Stderr, "bad JWKS:", err)
		os.Exit(2)
	}

	// The handler: echo who the gateway says is calling.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, _ := json.Marshal(r.Context().Value(identityKey{}).(*Identity))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(out)
	})
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("listening http://%s\n", listener.Addr())
	// The guard is the server's handler itself, not behind http.ServeMux (which redirects "//").
	server := &http.Server{Handler: RequireIdentity(&keys, *issuer, *audience, NewReplayGuard(100_000), echo), ReadHeaderTimeout: 10 * time.Second}
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
