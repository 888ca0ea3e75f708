package main

// Results and error JSON validated against porter-ffi/schema with a JSON Schema validator.

import (
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemas are the committed JSON Schemas, compiled.
type schemas struct {
	dir      string
	compiled map[string]*jsonschema.Schema
}

func loadSchemas(dir string) *schemas {
	s := &schemas{dir: dir, compiled: map[string]*jsonschema.Schema{}}
	compiler := jsonschema.NewCompiler()
	for _, name := range []string{"artifact.schema.json", "list.schema.json", "inspection.schema.json", "tags.schema.json", "copy-outcome.schema.json", "prune-report.schema.json", "verify-report.schema.json", "error.schema.json"} {
		schema, err := compiler.Compile(filepath.Join(dir, name))
		if err != nil {
			fatal("compile "+name, err)
		}
		s.compiled[name] = schema
	}
	return s
}

// validate checks that text is valid against the schema name.
func (s *schemas) validate(t *T, name, text, what string) {
	instance, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if !t.Check(err == nil, "%s: not JSON: %q", what, text) {
		return
	}
	err = s.compiled[name].Validate(instance)
	t.Check(err == nil, "%s does not match %s: %v\n%s", what, name, err, text)
}
