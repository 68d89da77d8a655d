package config

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"regexp"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaJSON is the JSON Schema of pb_processes.json, for editors and for
// validation. Reference it from a config file with
//
//	{"$schema": "./pb_processes.schema.json", "processes": [...]}
//
// after writing it out with `pocketbase pm schema > pb_processes.schema.json`.
//
//go:embed pb_processes.schema.json
var SchemaJSON []byte

const schemaURL = "pb_processes.schema.json"

// schemaDoc holds what the loader reads from the schema besides
// validating with it: the hints of fields and the name pattern.
type schemaDoc struct {
	Defs struct {
		Duration struct {
			Hint string `json:"x-hint"`
		} `json:"duration"`
		Process struct {
			Properties map[string]struct {
				Hint        string `json:"x-hint"`
				Pattern     string `json:"pattern"`
				Description string `json:"description"`
				Ref         string `json:"$ref"`
			} `json:"properties"`
		} `json:"process"`
	} `json:"$defs"`
}

var loadSchema = sync.OnceValues(func() (*jsonschema.Schema, *schemaDoc) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		panic("processman: embedded schema is not JSON: " + err.Error())
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		panic("processman: embedded schema: " + err.Error())
	}
	// Files are validated as the object form; a bare list is wrapped
	// into one first (see Parse).
	compiled, err := c.Compile(schemaURL + "#/$defs/file")
	if err != nil {
		panic("processman: embedded schema does not compile: " + err.Error())
	}
	var meta schemaDoc
	if err := json.Unmarshal(SchemaJSON, &meta); err != nil {
		panic("processman: embedded schema: " + err.Error())
	}
	return compiled, &meta
})

// fieldHint returns the fix hint the schema gives for a process field.
func fieldHint(field string) string {
	_, meta := loadSchema()
	prop, ok := meta.Defs.Process.Properties[field]
	if !ok {
		return ""
	}
	if prop.Hint == "" && prop.Ref == "#/$defs/duration" {
		return meta.Defs.Duration.Hint
	}
	return prop.Hint
}

// processFields lists the fields a process entry may have.
func processFields() []string {
	_, meta := loadSchema()
	fields := make([]string, 0, len(meta.Defs.Process.Properties))
	for name := range meta.Defs.Process.Properties {
		fields = append(fields, name)
	}
	return fields
}

var namePattern = sync.OnceValue(func() *regexp.Regexp {
	_, meta := loadSchema()
	return regexp.MustCompile(meta.Defs.Process.Properties["name"].Pattern)
})
