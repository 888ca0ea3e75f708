module ds-porter.test/dssig

go 1.26.0
