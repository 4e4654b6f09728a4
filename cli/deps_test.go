package cli_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A program built on cli with the memory store links no SQLite, no pgx and
// no testing: a user's program pays only for the stores it imports.
func TestAProgramPaysOnlyForTheStoresItImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./testdata/memoryonly").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list listed only %v", deps)
	}
	for _, dep := range deps {
		if dep == "testing" || strings.Contains(dep, "sqlite") || strings.Contains(dep, "jackc/pgx") || strings.Contains(dep, "internal/benchsuite") || strings.Contains(dep, "pgtest") {
			t.Errorf("a program on cli and the memory store links %s", dep)
		}
	}
}
