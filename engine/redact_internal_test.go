package engine

import "testing"

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:REDACTED@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?password=secret&sslmode=disable", "postgres://u@h/db?password=REDACTED&sslmode=disable"},
		{"postgres://u@h/db?sslpassword=secret", "postgres://u@h/db?sslpassword=REDACTED"},
		{"postgres://u@h/db?Pass%77ord=secret", "postgres://u@h/db?Pass%77ord=REDACTED"},
		{"postgres://u:a@b@h/db?password=c@d#frag", "postgres://u:REDACTED@h/db?password=REDACTED#frag"},
		{"postgres://u:p/x?y@h/db?password=s", "postgres://u:REDACTED@h/db?password=REDACTED"}, // does not parse
		{"postgres://u@h/db?application_name=ferry", "postgres://u@h/db?application_name=ferry"},
		{"postgres://h/db", "postgres://h/db"},
		{"sqlite:ferry.db", "sqlite:ferry.db"},
		{"host=h user=u password='a b' dbname=d", "host=h user=u password=REDACTED dbname=d"},
		{"file:x.db?_auth&_auth_user=admin&_auth_pass=secret", "file:x.db?_auth&_auth_user=admin&_auth_pass=REDACTED"},
	}
	for _, tc := range tests {
		if got := redactDSN(tc.in); got != tc.want {
			t.Errorf("redactDSN(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
