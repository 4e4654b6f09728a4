// The console's end-to-end test in a real browser: the system's Chromium,
// driven by playwright-core. console/e2e_test.go starts the console and
// runs this script with:
//
//   CONSOLE_URL   the console's address (http://127.0.0.1:PORT)
//   CONSOLE_TOKEN its bearer token
//   CHROMIUM      the Chromium executable
//   WORLD_ID      an aggregate with a few events and headers, no snapshot
//   HOSTILE_ID    an aggregate whose event holds markup
//   SCREENSHOTS   where to save a screenshot of each page
//
// It prints "step: ..." lines as it goes, and "save" when it follows the
// log and waits for the test to save an event that happens "written while
// following". It exits 0 if every check passed, 1 with the reason if not.
import { chromium } from "playwright-core";
import path from "node:path";

const env = process.env;
const base = env.CONSOLE_URL;
const wait = { timeout: 20000 };

function check(ok, message) {
  if (!ok) {
    throw new Error(message);
  }
}

function step(name) {
  console.log("step: " + name);
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM,
  // Root cannot use Chromium's sandbox; the pages are the test's own.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  // A script error or a refused resource (the CSP blocks inline scripts)
  // is a failure.
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    // The login page comes with status 401, which Chromium reports.
    if (m.type() === "error" && !m.text().includes("status of 401")) {
      problems.push("console error: " + m.text());
    }
  });
  const shot = async (name) => {
    await page.screenshot({ path: path.join(env.SCREENSHOTS, name + ".png"), fullPage: true });
  };

  step("a wrong token gets the login page again");
  let resp = await page.goto(base + "/");
  check(resp.status() === 401, "GET / without logging in: status " + resp.status());
  await page.locator("#login").waitFor(wait);
  await page.fill('input[name="token"]', "not-the-token");
  await Promise.all([page.waitForLoadState("load"), page.click('#login button[type="submit"]')]);
  await page.locator("#login-problem").waitFor(wait);
  check((await page.textContent("#login-problem")).includes("Wrong credentials"), "no message after a wrong token");
  check((await page.locator("#applications").count()) === 0, "a wrong token shows the applications");
  await shot("login");

  step("the right token logs in");
  await page.fill('input[name="token"]', env.CONSOLE_TOKEN);
  await Promise.all([page.waitForURL(base + "/", wait), page.click('#login button[type="submit"]')]);
  await page.locator("#applications").waitFor(wait);
  const apps = await page.locator("#applications tbody tr").allTextContents();
  check(apps.length === 2 && apps[0].includes("Worlds") && apps[1].includes("Counters"), "applications: " + apps.join(" | "));
  check((await page.textContent("#applications tbody tr:first-child td.events")).trim() === "17", "Worlds does not have 17 events");
  await shot("applications");

  step("the log pages and filters by topic");
  await Promise.all([page.waitForURL(/\/log\/Worlds$/, wait), page.click('#applications a[href="/log/Worlds"] >> nth=0')]);
  check((await page.locator("#log tbody tr").count()) === 17, "the log does not show 17 notifications");
  await page.fill('input[name="limit"]', "5");
  await Promise.all([page.waitForLoadState("load"), page.click('form.filter button[type="submit"]')]);
  check((await page.locator("#log tbody tr").count()) === 5, "a page of 5 does not show 5");
  await Promise.all([page.waitForLoadState("load"), page.click('a[rel="next"]')]);
  check((await page.getAttribute("#log tbody tr:first-child", "data-id")) === "6", "the next page does not start at 6");
  await page.fill('input[name="topics"]', "World.Created");
  await page.fill('input[name="start"]', "1");
  await page.fill('input[name="limit"]', "50");
  await Promise.all([page.waitForLoadState("load"), page.click('form.filter button[type="submit"]')]);
  const topics = await page.locator("#log tbody td.topic").allTextContents();
  check(topics.length === 6 && topics.every((t) => t === "World.Created"), "filtered topics: " + topics.join(", "));
  await shot("log-filtered");

  step("the log follows while a writer saves");
  await page.goto(base + "/log/Worlds");
  await page.click("#follow");
  await page.locator('#tail-status[data-state="following"]').waitFor(wait);
  console.log("save");
  const written = page.locator("#log tbody tr", { hasText: "written while following" });
  await written.waitFor(wait);
  check((await page.locator("#log tbody tr").count()) === 18, "after the save the log has not 18 rows");
  check((await page.textContent("#tail-status")).includes("1 new notification"), "the status does not count the new notification");
  await shot("log-following");
  await page.click("#follow");

  step("hostile event state is shown as text");
  await page.goto(base + "/aggregate/Worlds/" + env.HOSTILE_ID);
  const shown = await page.locator("#events").innerText();
  check(shown.includes('<script>document.title=\\"pwned\\"'), "the markup is not shown as text: " + shown);
  check(shown.includes("<img src=x onerror="), "the img markup is not shown as text");
  check((await page.locator("main script, main img").count()) === 0, "the event's markup became elements");
  check((await page.evaluate(() => window.pwned)) === undefined, "the event's script ran");
  check(!(await page.title()).includes("pwned"), "the event's script changed the title");
  await shot("aggregate-hostile");

  step("search finds an aggregate by ID");
  await page.goto(base + "/");
  await page.fill('header input[name="id"]', env.WORLD_ID);
  await Promise.all([page.waitForURL(base + "/aggregate/Worlds/" + env.WORLD_ID, wait), page.click('header .search button')]);

  step("a snapshot is taken from the page");
  check(await page.locator("#no-snapshots").isVisible(), "the world has a snapshot already");
  const headers = await page.locator("#events td.commit").first().innerText();
  check(headers.includes("user ada") && headers.includes("correlation_id order-7"), "headers: " + headers);
  await Promise.all([page.waitForURL(/snapshot=4/, wait), page.click("#take-snapshot")]);
  check((await page.textContent("p.done")).includes("Snapshot taken at version 4."), "no confirmation of the snapshot");
  check((await page.locator("#snapshot-list tbody tr").count()) === 1, "the snapshot is not listed");
  await page.click("#snapshot-list summary");
  check((await page.locator("#snapshot-list pre").innerText()).includes("dinosaurs"), "the snapshot's state is not shown");
  await shot("aggregate");

  step("followers and projections show their lag");
  await page.click('nav a[href="/readers"]');
  await page.locator("table.lags").first().waitFor(wait);
  const readers = await page.locator("main").innerText();
  check(readers.includes("Counters") && readers.includes("happenings v1"), "readers: " + readers);
  await shot("readers");

  step("the health view shows the report");
  await page.click('nav a[href="/health"]');
  await page.locator("#checks").waitFor(wait);
  check((await page.locator("#checks tbody tr").count()) >= 3, "fewer than 3 checks");
  await shot("health");

  step("logging out ends the session");
  await Promise.all([page.waitForURL(base + "/login", wait), page.click("form.logout button")]);
  resp = await page.goto(base + "/readers");
  check(resp.status() === 401 && (await page.locator("#login").count()) === 1, "after logging out /readers is not the login page");

  step("a wrong bearer token gets the login page");
  const wrong = await browser.newContext({ extraHTTPHeaders: { Authorization: "Bearer not-the-token" } });
  const other = await wrong.newPage();
  resp = await other.goto(base + "/health");
  check(resp.status() === 401 && (await other.locator("#login").count()) === 1, "a wrong bearer token is not sent to the login page");
  check((await other.locator("#checks").count()) === 0, "a wrong bearer token sees the health report");
  await wrong.close();

  check(problems.length === 0, problems.join("\n"));
  console.log("done");
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  if (problems.length > 0) {
    console.error(problems.join("\n"));
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
