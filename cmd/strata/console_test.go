package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// strata console refuses to start without a credential, serves the login
// page to requests without one, and the console to those with one.
func TestConsole(t *testing.T) {
	s := sqliteStore(t)
	demo(t, s, 0)
	const usage = "Run 'strata console --help' for usage.\n"
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "Error: no credential: set --token or STRATA_CONSOLE_TOKEN (or --user and STRATA_CONSOLE_PASSWORD), or give --no-auth to let anyone who can reach the address use the console\n"},
		{map[string]string{"STRATA_CONSOLE_TOKEN": ""}, []string{"--token", ""}, "Error: no credential: set --token or STRATA_CONSOLE_TOKEN (or --user and STRATA_CONSOLE_PASSWORD), or give --no-auth to let anyone who can reach the address use the console\n"},
		{nil, []string{"--token", "x", "--no-auth"}, "Error: --no-auth and a credential (--token, STRATA_CONSOLE_TOKEN, --user, STRATA_CONSOLE_USER) contradict each other\n"},
		{nil, []string{"--user", "ada"}, "Error: --user ada: set its password in STRATA_CONSOLE_PASSWORD\n"},
		{map[string]string{"STRATA_CONSOLE_PASSWORD": "pw"}, nil, "Error: STRATA_CONSOLE_PASSWORD is set without a user: set --user or STRATA_CONSOLE_USER\n"},
		{nil, []string{"--no-auth", "--tenant", "acme"}, "Error: --tenant: the console shows every tenant; choose one in its search form\n"},
		{nil, []string{"--no-auth", "--tls-cert", "c.pem"}, "Error: --tls-cert and --tls-key go together\n"},
	} {
		expect(t, s.runWith(t, tc.env, append([]string{"console"}, tc.args...)...), 2, "", tc.want+usage)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := s.command(ctx, map[string]string{"STRATA_CONSOLE_TOKEN": "s3cret", "STRATA_CONSOLE_USER": "ada", "STRATA_CONSOLE_PASSWORD": "lovelace"},
		"console", "--addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewReader(stdout)
	first, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("%v; stderr %q", err, stderr.String())
	}
	m := regexp.MustCompile(`^Serving the console of domain worlds at (http://127\.0\.0\.1:\d+)/ \((.*)\)\.\n$`).FindStringSubmatch(first)
	if m == nil || m[2] != s.desc {
		t.Fatalf("first line %q", first)
	}
	get := func(path string, auth func(*http.Request)) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1]+path, nil)
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	if code, body := get("/log/Worlds", nil); code != http.StatusUnauthorized || !strings.Contains(body, `id="login"`) {
		t.Fatalf("without a credential: %d\n%s", code, body)
	}
	if code, body := get("/log/Worlds", bearer("wrong")); code != http.StatusUnauthorized || !strings.Contains(body, `id="login"`) {
		t.Fatalf("with a wrong token: %d\n%s", code, body)
	}
	code, body := get("/", bearer("s3cret"))
	if code != http.StatusOK || !strings.Contains(body, `<td class="num events">63</td>`) || !strings.Contains(body, `<a href="/log/Counters">Counters</a>`) {
		t.Fatalf("the applications: %d\n%s", code, body)
	}
	if code, body := get("/health", func(r *http.Request) { r.SetBasicAuth("ada", "lovelace") }); code != http.StatusOK || !strings.Contains(body, "follower Counters reading Worlds") {
		t.Fatalf("the health page with basic authentication: %d\n%s", code, body)
	}
	// The login form of a browser.
	form := url.Values{"token": {"s3cret"}, "next": {"/readers"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m[1]+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/readers" || !strings.Contains(resp.Header.Get("Set-Cookie"), "HttpOnly; SameSite=Strict") {
		t.Fatalf("login: %d to %q, cookie %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Set-Cookie"))
	}
	// A browser that follows a log does not hold the shutdown.
	tailReq, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1]+"/log/Worlds/tail", nil)
	tailReq.Header.Set("Authorization", "Bearer s3cret")
	tail, err := http.DefaultClient.Do(tailReq)
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Body.Close()
	if line, err := bufio.NewReader(tail.Body).ReadString('\n'); err != nil || line != ": following\n" {
		t.Fatalf("tail: %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil || string(rest) != "Stopped.\n" || stderr.String() != "" {
		t.Fatalf("after Ctrl-C: %v, stdout %q, stderr %q", err, rest, stderr.String())
	}
}
