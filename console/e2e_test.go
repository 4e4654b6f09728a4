package console_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-go/strata/console"
	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/persistence"
)

// e2eDir holds the browser script and its npm package (playwright-core,
// pinned by package-lock.json and installed into node_modules there).
const e2eDir = "testdata/e2e"

// browserTools finds Chromium, node and playwright-core, installing
// playwright-core with npm ci if it is missing. Under CI=true a missing
// tool fails the test; otherwise the test is skipped with how to get it.
func browserTools(t *testing.T) (chromium, node string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + ": install Chromium with `apt-get install -y chromium chromium-driver` (or set STRATA_CHROMIUM), node and npm with `apt-get install -y nodejs npm`, and playwright-core with `npm ci --prefix console/testdata/e2e` (.ci/run does all of it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	chromium = os.Getenv("STRATA_CHROMIUM")
	if chromium == "" {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				chromium = p
				break
			}
		}
	}
	if chromium == "" {
		missing("no Chromium")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			missing("no playwright-core and no npm to install it")
		}
		out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefix", e2eDir).CombinedOutput()
		if err != nil {
			missing("npm ci of playwright-core failed: " + err.Error() + "\n" + string(out))
		}
	}
	return chromium, node
}

// TestConsoleInChromium opens every page of a console on a SQLite store
// in headless Chromium, follows the log while the test saves, takes a
// snapshot from the page, and checks that a wrong token gets the login
// page (testdata/e2e/console.mjs). It saves a screenshot of each page in
// $STRATA_CONSOLE_SCREENSHOTS if set (docs/console/ has them), else in
// the test's artifact directory (kept with go test -artifacts).
func TestConsoleInChromium(t *testing.T) {
	chromium, node := browserTools(t)
	shots := os.Getenv("STRATA_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
	shots, err := filepath.Abs(shots)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	c := f.console(t, console.WithBearerToken(token), console.WithPollInterval(50*time.Millisecond))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srvCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- httpapi.Serve(srvCtx, httpapi.NewServer("", c), ln, "", "") }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	cmd := exec.CommandContext(ctx, node, "console.mjs")
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(),
		"CONSOLE_URL=http://"+ln.Addr().String(), "CONSOLE_TOKEN="+token, "CHROMIUM="+chromium,
		"WORLD_ID="+f.world.String(), "HOSTILE_ID="+f.hostile.String(), "SCREENSHOTS="+shots)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var steps []string
	saved := false
	for lines.Scan() {
		line := lines.Text()
		switch {
		case line == "save":
			// The page follows the log: a writer saves.
			f.happen(t, ctx, f.hostile, "written while following")
			saved = true
		case strings.HasPrefix(line, "step: "):
			steps = append(steps, strings.TrimPrefix(line, "step: "))
			t.Log(line)
		case line == "done":
			steps = append(steps, line)
		default:
			t.Log(line)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the browser script failed at %q: %v\n%s", steps[max(len(steps)-1, 0):], err, stderr.String())
	}
	if len(steps) != 12 || steps[len(steps)-1] != "done" || !saved {
		t.Fatalf("the browser script ran the steps %q (saved: %v)\n%s", steps, saved, stderr.String())
	}
	// The snapshot the page took is in the store.
	snaps, err := f.worlds.Snapshots().Get(ctx, f.world, persistence.EventQuery{})
	if err != nil || len(snaps) != 1 || snaps[0].OriginatorVersion != 4 {
		t.Fatalf("snapshots of the world: %v, %v", snaps, err)
	}
	for _, name := range []string{"login", "applications", "log-filtered", "log-following", "aggregate-hostile", "aggregate", "readers", "health"} {
		if st, err := os.Stat(filepath.Join(shots, name+".png")); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	t.Logf("screenshots in %s", shots)
}
