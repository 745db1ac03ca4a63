package port

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// bulkAnswers are bulk answers, usual and not: readAnswer must give what
// json.Unmarshal gives for each, result and error alike.
var bulkAnswers = []string{
	`{"ok":true,"entities":[{"created":true,"identifier":"a","index":0},{"identifier":"b","index":1,"created":false}],"errors":[]}`,
	` {"entities" : [ {"identifier" : "a" , "index" : 0 } ] , "errors" : [ ] , "ok" : true } ` + "\n",
	`{"ok":false,"entities":[],"errors":[{"identifier":"x","index":3,"statusCode":422,"error":"invalid","message":"bad <thing>"}]}`,
	`{"ok":true,"entities":[{"identifier":"ünïcode/ok","index":0,"additionalData":{"a":[1,-2.5e3,null,true,"s"]}}]}`,
	`{"ok":true}`, `{}`, `null`, `[]`, `""`, `42`, ``, `{`, `{"ok":tru}`, `{"ok":true}x`, `<html>502 Bad Gateway</html>`,
	`{"ok":true,"entities":"yes"}`, `{"entities":null}`, `{"entities":[null]}`, `{"entities":[1]}`,
	`{"entities":[{"identifier":"a","index":0}],"entities":[{"index":1}]}`,
	`{"entities":[{"identifier":"a","index":"0"}]}`, `{"entities":[{"identifier":"a","index":1.0}]}`,
	`{"entities":[{"identifier":"a","index":1e2}]}`, `{"entities":[{"identifier":"a","index":-0}]}`,
	`{"entities":[{"identifier":"a","index":99999999999999999999}]}`, `{"entities":[{"identifier":"a","index":01}]}`,
	`{"entities":[{"identifier":null,"index":null}]}`, `{"entities":[{"identifier":7,"index":0}]}`,
	`{"entities":[{"identifier":"a\"b","index":0}]}`, `{"entities":[{"identifier":"a\u0062","index":0}]}`,
	"{\"entities\":[{\"identifier\":\"a\xffb\",\"index\":0}]}", "{\"entities\":[{\"identifier\":\"a\tb\",\"index\":0}]}",
	`{"Entities":[{"Identifier":"a","INDEX":2}]}`, `{"entities":[{"identifier":"a","ındex":2}]}`,
	`{"entities":[{"identifier":"a","index":0,"identifier":"b"}]}`, `{"entities":[{"identifier":"a","index":0,}]}`,
	`{"entities":[{"identifier":"a","index":0}],}`, `{"entities":[{"identifier":"a","index":0}]`, `{"x":[1,2,]}`,
	`{"x":truex}`, `{"x":-}`, `{"x":1.}`, `{"x":1e}`, `{"x":{"y":{"z":[[[]]]}}}`, `{"x":nul}`,
	`{"errors":[{"identifier":"x","index":0,"statusCode":"422"}]}`, `{"errors":{}}`,
	`{"errors":[{"identifier":"x","index":0}],"errors":[{"identifier":"y","index":1}]}`,
	// Adversarial shapes (review): repeated or case-folded keys in an
	// element, escaped or non-ASCII keys that fold to a field, numbers
	// encoding/json refuses for an int, a BOM, ok:false, an error without
	// an index, members of other types.
	`{"entities":[{"identifier":"a","index":0,"index":null}]}`, `{"entities":[{"identifier":"a","index":null,"index":0}]}`,
	`{"entities":[{"identifier":"a","index":0,"index":1}]}`, `{"entities":[{"index":0,"Index":1,"identifier":"a"}]}`,
	`{"entities":[{"identifier":"a","index":0,"IDENTIFIER":"b"}]}`, `{"entities":[{"identifier":"a","\u0069ndex":3}]}`,
	`{"entities":[{"identifier":"a","index":0}],"ENTITIES":[{"identifier":"b","index":1}]}`,
	"{\"entities\":[{\"identifier\":\"a\",\"inde\u212a\":1}]}", "{\"errors\":[{\"\u017ftatusCode\":1}]}",
	`{"errors":[{"identifier":"x","index":2,"statusCode":422,"STATUSCODE":200,"message":"m"}]}`,
	`{"entities":[{"identifier":"a","in_dex":1,"in-dex":2}]}`, `{"errors":[{"index":0,"status_code":422,"Status-Code":500}]}`,
	`{"entities":[{"identifier":"a","index":1e0}]}`, `{"entities":[{"identifier":"a","index":-1}]}`,
	`{"entities":[{"identifier":"a","index":9223372036854775807}]}`, `{"entities":[{"identifier":"a","index":9223372036854775808}]}`,
	`{"entities":[{"identifier":"a","index":-9223372036854775809}]}`, `{"entities":[{"identifier":"a","index":4294967296}]}`,
	`{"entities":[{"identifier":"a","index":2147483648}]}`, `{"entities":[{"identifier":"a","index":+1}]}`,
	`{"entities":[{"identifier":"a","index":0.0}]}`, `{"entities":[{"identifier":"a","index":-}]}`,
	"\ufeff{\"entities\":[]}", "\t\r\n {\"entities\":[]} \t\r\n", "{\"entities\":[]}\x00", "{\"entities\":[]}\u00a0",
	`{"ok":false,"entities":[],"errors":[{"identifier":"a","statusCode":500,"error":"internal","message":"x"}]}`,
	`{"entities":[{"identifier":"a","index":0,"created":true,"meta":{"index":5,"identifier":"z","x":[{"index":7}]}}]}`,
	`{"entities":[{"identifier":"a","index":0}],"errors":null}`, `{"errors":[null]}`, `{"errors":[{"message":null,"statusCode":null}]}`,
	`{"entities":[{"identifier":"","index":0}]}`, `{"entities":[{}]}`, `{"entities":[{"identifier":"a"}]}`,
	`{"entities":[{"identifier":"a","index":0}],"errors":[{"identifier":"a","index":0,"statusCode":422,"error":"e","message":"m"}]}`,
	"{\"entities\":[{\"identifier\":\"\xed\xa0\x80\",\"index\":0}]}", "{\"entities\":[{\"identifier\":\"a\x7f\u2028\",\"index\":0}]}",
	`{"entities":[{"identifier":"a","index":0}]}{"entities":[]}`, `{"entities":[{"identifier":"a","index":0}]`, `{"entities":[{"identifier":"a","index":0`,
	`{"entities":[{"identifier":"a","index"`, `{"entities":[{"identifier":"a","index":0},]}`, `{"entities":[{"identifier":"a" "index":0}]}`,
	`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
}

func TestReadBulkAnswerIsUnmarshal(t *testing.T) {
	for _, body := range bulkAnswers {
		checkBulkAnswer(t, []byte(body))
	}
}

func checkBulkAnswer(t *testing.T, body []byte) {
	t.Helper()
	var want, got bulkResult
	werr := json.Unmarshal(body, &want)
	gerr := got.decode(body)
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() || !reflect.DeepEqual(got, want) {
		t.Errorf("%q:\nread      %+v, %v\nUnmarshal %+v, %v", body, got, gerr, want, werr)
	}
}

// The usual answers are read by scanBulk, not handed to encoding/json.
func TestScanBulkReadsTheUsualAnswer(t *testing.T) {
	for _, body := range bulkAnswers[:4] {
		var r bulkResult
		if !scanBulk([]byte(body), &r) {
			t.Errorf("%q went to encoding/json", body)
		}
	}
}

func FuzzReadBulkAnswer(f *testing.F) {
	for _, body := range bulkAnswers {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkBulkAnswer(t, body) })
}

// An element of a bulk answer without its index (absent or null, in
// entities or errors, read by the scanner or by encoding/json) makes the
// answer malformed; with every index given it is read.
func TestReadAnswerRefusesAnElementWithoutIndex(t *testing.T) {
	for body, want := range map[string]string{
		`{"entities":[{"identifier":"a","index":0},{"identifier":"b"}],"errors":[]}`:                "entities[1] has no index",
		`{"entities":[{"identifier":"a","index":null}]}`:                                            "entities[0] has no index",
		`{"entities":[{"identifier":"a\u0061","Created":true}]}`:                                    "entities[0] has no index",
		`{"entities":[],"errors":[{"identifier":"unknown","statusCode":422,"message":"no"}]}`:       "errors[0] has no index",
		`{"entities":[],"errors":[{"identifier":"a","index":null,"statusCode":422}]}`:               "errors[0] has no index",
		`{"entities":[{"identifier":"a","index":0}],"errors":[{"identifier":"b","index":1}]}`:       "",
		`{"entities":[{"identifier":"a\u0061","INDEX":0}],"errors":[{"identifier":"b","Index":1}]}`: "",
		// A null element has no index; a repeated key's last value is the
		// one read (as JSON.parse reads it), null included.
		`{"entities":[null]}`:                                      "entities[0] has no index",
		`{"entities":[],"errors":[null]}`:                          "errors[0] has no index",
		`{"entities":[{"identifier":"a","index":0,"index":null}]}`: "entities[0] has no index",
		`{"entities":[{"identifier":"a","index":0,"INDEX":null}]}`: "entities[0] has no index",
		`{"errors":[{"index":0,"statusCode":422,"Index":null}]}`:   "errors[0] has no index",
		`{"entities":[{"identifier":"a","index":null,"index":0}]}`: "",
	} {
		var r bulkResult
		err := r.readAnswer([]byte(body))
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
