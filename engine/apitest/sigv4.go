package apitest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SigV4 checks AWS Signature Version 4 as an AWS service does, computed
// here from the specification with the standard library alone, so that a
// test of a client that signs with the AWS SDK checks it against an
// independent reading of the same rules.
type SigV4 struct {
	Region, Service string
	// Keys maps access key ids to their secrets; a key with a session
	// token (temporary credentials) needs X-Amz-Security-Token.
	Keys map[string]SigV4Key
	// Now is the server's clock (default time.Now): a request whose
	// X-Amz-Date is more than 5 minutes off it is refused.
	Now func() time.Time
}

// SigV4Key is the secret half of an access key.
type SigV4Key struct{ Secret, SessionToken string }

// AWSError is how an AWS JSON-protocol service refuses a request: its
// status and the body {"__type": Type, "message": Message}.
type AWSError struct {
	Status        int
	Type, Message string
}

func (e *AWSError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

// Write answers the error as an AWS JSON service does.
func (e *AWSError) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, `{"__type":%q,"message":%q}`, e.Type, e.Message)
}

const sigV4Alg = "AWS4-HMAC-SHA256"

// Check verifies r, whose body is body: nil when the signature holds.
func (v SigV4) Check(r *http.Request, body []byte) *AWSError {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	deny := func(typ, msg string) *AWSError {
		return &AWSError{Status: http.StatusBadRequest, Type: typ, Message: msg}
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return &AWSError{Status: http.StatusForbidden, Type: "MissingAuthenticationTokenException", Message: "Missing Authentication Token"}
	}
	rest, ok := strings.CutPrefix(auth, sigV4Alg+" ")
	if !ok {
		return deny("IncompleteSignatureException", "Authorization header requires the "+sigV4Alg+" algorithm")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = val
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return deny("IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature")
	}
	key, known := v.Keys[cred[0]]
	if !known {
		return deny("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if key.SessionToken != "" && r.Header.Get("X-Amz-Security-Token") != key.SessionToken {
		return deny("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return deny("IncompleteSignatureException", "X-Amz-Date is missing or not in the basic ISO 8601 format")
	}
	if cred[1] != amzDate[:8] || cred[2] != v.Region || cred[3] != v.Service || cred[4] != "aws4_request" {
		return deny("InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region and service: %s", fields["Credential"]))
	}
	server := now().UTC()
	switch {
	case at.Before(server.Add(-5 * time.Minute)):
		return deny("InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, server.Add(-5*time.Minute).Format("20060102T150405Z"), server.Format("20060102T150405Z")))
	case at.After(server.Add(5 * time.Minute)):
		return deny("InvalidSignatureException", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			amzDate, server.Add(5*time.Minute).Format("20060102T150405Z"), server.Format("20060102T150405Z")))
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") {
		return deny("InvalidSignatureException", "'Host' and 'X-Amz-Date' must be signed headers")
	}
	var canon strings.Builder
	for _, h := range signed {
		var val string
		switch h {
		case "host":
			val = r.Host
		case "content-length":
			val = fmt.Sprint(r.ContentLength)
		default:
			vals := r.Header.Values(h)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			val = strings.Join(vals, ",")
		}
		canon.WriteString(h + ":" + val + "\n")
	}
	sum := sha256.Sum256(body)
	creq := strings.Join([]string{r.Method, canonicalURI(r.URL), canonicalQuery(r.URL.Query()), canon.String(), fields["SignedHeaders"], hex.EncodeToString(sum[:])}, "\n")
	scope := strings.Join(cred[1:], "/")
	creqSum := sha256.Sum256([]byte(creq))
	toSign := strings.Join([]string{sigV4Alg, amzDate, scope, hex.EncodeToString(creqSum[:])}, "\n")
	k := hmacSHA256([]byte("AWS4"+key.Secret), cred[1])
	for _, part := range cred[2:] {
		k = hmacSHA256(k, part)
	}
	want := hex.EncodeToString(hmacSHA256(k, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return deny("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalURI is the path URI-encoded twice over, as every service but
// S3 takes it: each segment of the path as sent, escaped again.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = awsEscape(s)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery sorts the parameters by name, then value, each
// URI-encoded.
func canonicalQuery(q url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{awsEscape(k), awsEscape(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&")
}

// awsEscape percent-encodes every byte but the unreserved characters of
// RFC 3986 (A-Z a-z 0-9 - _ . ~), in upper-case hex.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
