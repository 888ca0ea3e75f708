module ds-porter.test/cgo

go 1.22
