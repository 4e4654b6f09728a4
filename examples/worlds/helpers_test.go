package worlds_test

import "github.com/strata-go/strata/persistence"

func persistenceLatest() persistence.EventQuery { return persistence.EventQuery{Desc: true, Limit: 1} }

func allEvents() persistence.EventQuery { return persistence.EventQuery{} }
