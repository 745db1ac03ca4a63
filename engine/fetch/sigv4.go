package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWSSkew is how far a request's signing time (X-Amz-Date) may be from
// AWS's clock: further, AWS refuses it (SignatureDoesNotMatch "Signature
// expired", RequestTimeTooSkewed).
const AWSSkew = 5 * time.Minute

// sigv4 signs requests with AWS Signature Version 4. The signing itself
// is the AWS SDK's (canonical request, key derivation): a hand-written
// one would differ from AWS's on some corner of path or query escaping.
type sigv4 struct {
	signer  *v4.Signer
	creds   aws.Credentials
	region  string
	service string
}

func newSigV4(a Auth) *sigv4 {
	return &sigv4{
		signer:  v4.NewSigner(),
		creds:   aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey, SessionToken: a.SessionToken},
		region:  a.Region,
		service: a.Service,
	}
}

// sign adds X-Amz-Date, X-Amz-Security-Token (temporary credentials) and
// Authorization to hdr for the request as it will be sent, at now, and
// returns the target with its query in the canonical form it was signed
// with. Every attempt is signed anew: the signature holds its time.
func (s *sigv4) sign(ctx context.Context, hdr http.Header, method, target string, body []byte, now time.Time) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("aws_sigv4: %w", parseError(err))
	}
	// AWS signs the Host header as it arrives, and the SDK signs a host
	// without its scheme's default port: the URL must not carry it either.
	if p := u.Port(); p == "" || p == map[string]string{"http": "80", "https": "443"}[u.Scheme] {
		u.Host = strings.TrimSuffix(strings.TrimSuffix(u.Host, ":"+p), ":")
	}
	req := &http.Request{Method: method, URL: u, Host: u.Host, Header: hdr, ContentLength: int64(len(body))}
	// A header set by an earlier attempt would be signed as a header of
	// this one.
	hdr.Del("Authorization")
	hdr.Del("X-Amz-Date")
	hdr.Del("X-Amz-Security-Token")
	sum := sha256.Sum256(body)
	if err := s.signer.SignHTTP(ctx, s.creds, req, hex.EncodeToString(sum[:]), s.service, s.region, now); err != nil {
		return "", fmt.Errorf("aws_sigv4: %w", err)
	}
	return u.String(), nil
}

// resignKey holds, in a signed request's context, the function that signs
// its redirects (see checkRedirect).
type resignKey struct{}

// resign signs a redirected request (req) anew at now: the signature
// covers the first request's path and query, which AWS would refuse at
// the new place.
func (s *sigv4) resign(ctx context.Context, req *http.Request, now time.Time) error {
	var body []byte
	if req.GetBody != nil && req.ContentLength != 0 {
		rc, err := req.GetBody()
		if err != nil {
			return fmt.Errorf("aws_sigv4: signing a redirect: %w", err)
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("aws_sigv4: signing a redirect: %w", err)
		}
	}
	target, err := s.sign(ctx, req.Header, req.Method, req.URL.String(), body, now)
	if err != nil {
		return err
	}
	if req.URL, err = url.Parse(target); err != nil {
		return fmt.Errorf("aws_sigv4: signing a redirect: %w", parseError(err))
	}
	req.Host = req.URL.Host
	return nil
}

// skewHint explains an AWS refusal of a request's time, from the answer's
// Date header (AWS sends one) or its error's words; "" when the answer
// says nothing of the clock.
func skewHint(h http.Header, body []byte, now time.Time) string {
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		off := now.Sub(d)
		if off < 0 {
			off = -off
		}
		if off > AWSSkew {
			way := "behind"
			if now.After(d) {
				way = "ahead of"
			}
			return fmt.Sprintf("the local clock is %s %s the server's (Date: %s): AWS refuses a request signed more than %s off its time; set the clock right (NTP)",
				off.Round(time.Second), way, h.Get("Date"), AWSSkew)
		}
	}
	b := string(body)
	for _, w := range []string{"RequestTimeTooSkewed", "Signature expired", "Signature not yet current", "RequestExpired"} {
		if strings.Contains(b, w) {
			return fmt.Sprintf("AWS refuses the request's time (X-Amz-Date more than %s off its clock): set the clock right (NTP)", AWSSkew)
		}
	}
	return ""
}
