package fetch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"slices"
	"strconv"
)

// Request body formats (Request.BodyFormat).
const (
	FormatJSON = "json" // application/json (default)
	FormatForm = "form" // application/x-www-form-urlencoded, as RFC 6749 token requests
	FormatText = "text" // a string sent as it is, text/plain (a query language's text: Artifactory's AQL)
)

// formValues encodes a JSON object as form fields: a string as it is, a
// number or boolean as its JSON text, a list as the field repeated, null
// as no field. A nested object has no standard form encoding and is
// refused rather than guessed.
func formValues(body any) (url.Values, error) {
	m, ok := body.(map[string]any)
	if !ok {
		if s, isStrMap := body.(map[string]string); isStrMap {
			out := url.Values{}
			for k, v := range s {
				out.Set(k, v)
			}
			return out, nil
		}
		return nil, errors.New("a form body must be an object of fields")
	}
	out := url.Values{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		vals, err := formField(m[k])
		if err != nil {
			return nil, fmt.Errorf("form field %q: %w", k, err)
		}
		out[k] = vals
	}
	for k, v := range out {
		if len(v) == 0 {
			delete(out, k)
		}
	}
	return out, nil
}

func formField(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case bool:
		return []string{strconv.FormatBool(x)}, nil
	case int:
		return []string{strconv.Itoa(x)}, nil
	case int64:
		return []string{strconv.FormatInt(x, 10)}, nil
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}, nil
	case json.Number:
		return []string{x.String()}, nil
	case *big.Int:
		return []string{x.String()}, nil
	case []any:
		var out []string
		for _, e := range x {
			if _, nested := e.([]any); nested {
				return nil, errors.New("a list inside a list has no form encoding")
			}
			vs, err := formField(e)
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
		return out, nil
	case map[string]any:
		return nil, errors.New("an object has no form encoding: give its fields at the top level")
	}
	return nil, fmt.Errorf("%T has no form encoding", v)
}

// decodeBody decodes a JSON body, numbers as json.Number.
func decodeBody(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}
