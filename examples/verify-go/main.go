// Command verify-identity verifies a Nixflex gateway identity header (X-Nixflex-Identity)
// with go-jose:
//
//	verify-identity -jwks jwks.json -method POST -path /v1/agents < token
//
// It prints {"account_id":…,"key_id":…,"request_id":…} and exits 0 when the token is valid
// for that request; it prints the reason on stderr and exits 1 otherwise. In an engine, call
// VerifyIdentity from your HTTP middleware with r.Method and r.URL.EscapedPath() (the path as
// it arrived, not percent-decoded), and answer 401 on error. docs/engine-integration.md
// explains each check and the go-jose v4 variant.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
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
func VerifyIdentity(token string, keys *jose.JSONWebKeySet, method, path, issuer, audience string, now time.Time) (*Identity, error) {
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
	return &Identity{AccountID: c.Sub, KeyID: c.KeyID, RequestID: c.Jti}, nil
}

func main() {
	jwksPath := flag.String("jwks", "", "path to the gateway's JWKS document")
	method := flag.String("method", "", "request method")
	path := flag.String("path", "", "request path without the query")
	issuer := flag.String("issuer", defaultIssuer, "expected iss")
	audience := flag.String("audience", defaultAud, "expected aud")
	tokenFlag := flag.String("token", "", "the header value; read from stdin when absent")
	flag.Parse()
	if *jwksPath == "" || *method == "" || *path == "" {
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
	token := *tokenFlag
	if token == "" {
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		token = strings.TrimSpace(string(in))
	}

	identity, err := VerifyIdentity(token, &keys, *method, *path, *issuer, *audience, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "rejected:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(identity)
	fmt.Println(string(out))
}
