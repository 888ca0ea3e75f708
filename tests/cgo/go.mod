module ds-porter.test/cgo

go 1.22

require (
	example.invalid/delivery-station/ds-porter/porter-ffi/go/porter v0.0.0
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2
)

require golang.org/x/text v0.14.0 // indirect

replace example.invalid/delivery-station/ds-porter/porter-ffi/go/porter => ../../porter-ffi/go/porter
