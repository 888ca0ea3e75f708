module example.invalid/delivery-station/ds-porter/porter-ffi/go/porter

go 1.22
