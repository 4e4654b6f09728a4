// The Strata console's one script: the live tail of a notification log.
// Rows arrive as server-sent events whose data is a table row the server
// rendered (and escaped); nothing here builds markup from event data.
"use strict";
(function () {
  const button = document.getElementById("follow");
  const table = document.getElementById("log");
  if (!button || !table) {
    return;
  }
  const body = table.tBodies[0];
  const status = document.getElementById("tail-status");
  let source = null;
  let received = 0;

  function lastID() {
    const rows = body.rows;
    return rows.length > 0 ? rows[rows.length - 1].dataset.id : button.dataset.after;
  }

  function stop(message) {
    if (source) {
      source.close();
      source = null;
    }
    button.textContent = "Follow";
    button.setAttribute("aria-pressed", "false");
    status.textContent = message;
  }

  button.addEventListener("click", function () {
    if (source) {
      stop("");
      return;
    }
    const url = button.dataset.tail + "&after=" + encodeURIComponent(lastID());
    source = new EventSource(url);
    button.textContent = "Stop following";
    button.setAttribute("aria-pressed", "true");
    status.textContent = "Connecting…";
    source.addEventListener("open", function () {
      status.textContent = "Following: new notifications appear at the end as they are recorded.";
      status.dataset.state = "following";
    });
    source.addEventListener("notification", function (e) {
      body.insertAdjacentHTML("beforeend", e.data);
      received++;
      status.textContent = "Following: " + received + " new notification" + (received === 1 ? "" : "s") + ".";
      const empty = document.querySelector("p.empty");
      if (empty) {
        empty.remove();
      }
      body.rows[body.rows.length - 1].scrollIntoView({ block: "nearest" });
    });
    source.addEventListener("problem", function (e) {
      stop("Stopped: " + e.data);
    });
    source.addEventListener("error", function () {
      if (source && source.readyState === EventSource.CLOSED) {
        stop("Stopped: the console refused the tail (log in again?).");
      } else {
        status.textContent = "Disconnected; reconnecting…";
        delete status.dataset.state;
      }
    });
  });
})();
