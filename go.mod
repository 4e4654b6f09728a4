module github.com/strata-go/strata

go 1.26

require (
	github.com/go-json-experiment/json v1.27.2
	github.com/google/uuid v1.6.0
	github.com/shopspring/decimal v1.4.0
)
