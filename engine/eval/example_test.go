package eval_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/ferry-etl/ferry/engine/eval"
)

func ExampleCompileJQ() {
	q, err := eval.CompileJQ(`{identifier: ($parent.id + "/" + .id), title: (.name | clean_title)}`, []string{"parent"})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _, err := q.First(context.Background(),
		map[string]any{"id": "dev", "name": "k8s-dev_cluster"},
		map[string]any{"id": "shop"})
	fmt.Println(out, err)
	// Output: map[identifier:shop/dev title:K8S Dev Cluster] <nil>
}

func ExampleCompileExpr() {
	scope := eval.Scope{"config": &eval.Scope{"org_id": nil}, "parent": nil}
	_, err := eval.CompileExpr("config.org_idd != nil", scope, eval.BoolKind)
	var e *eval.Error
	if errors.As(err, &e) {
		fmt.Println(e.Offset, e)
	}
	// Output: 7 expr: unknown field org_idd of config; did you mean org_id?
}

func ExampleCompileTemplate() {
	scope := eval.Scope{"config": &eval.Scope{"org_id": nil}, "parent": nil}
	t, err := eval.CompileTemplate("/orgs/${ config.org_id }/apps/${ parent.id }/envs", scope)
	if err != nil {
		fmt.Println(err)
		return
	}
	env := map[string]any{
		"config": map[string]any{"org_id": "acme"},
		"parent": map[string]any{"id": "a/b"},
	}
	path, err := t.RenderEscaped(env, url.PathEscape)
	fmt.Println(path, err)
	// Output: /orgs/acme/apps/a%2Fb/envs <nil>
}

func ExampleCleanTitle() {
	for _, s := range []string{"k8s-x", "AWS-secrets", "x--y", "café"} {
		fmt.Printf("%q\n", eval.CleanTitle(s))
	}
	// Output:
	// "K8S X"
	// "Aws Secrets"
	// "X  Y"
	// "Caf "
}
