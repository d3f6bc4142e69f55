// The care console's only script: larger text, and live updates without reloading.
"use strict";
(function () {
  const html = document.documentElement;
  const large = document.getElementById("large-text");
  if (large) {
    large.addEventListener("click", function () {
      const on = !html.classList.contains("large");
      html.classList.toggle("large", on);
      large.setAttribute("aria-pressed", on ? "true" : "false");
      document.cookie = "large=" + (on ? "1" : "0") + "; path=/; max-age=31536000; samesite=strict";
    });
  }
  if (!document.querySelector("[data-live]") || !window.EventSource) {
    return;
  }
  const live = document.getElementById("live");
  let refreshing = false;
  let again = false;
  // The state token of what the page shows; its event stream is opened with it.
  let state = document.body.dataset.state || "";

  // One fetch again in 5 s after a failed one, however many asked for it (the stream's
  // retries and its events must not each start a chain of them while the server is down).
  let retry = null;
  function refreshLater() {
    if (retry !== null) { return; }
    retry = setTimeout(function () { retry = null; refresh(); }, 5000);
  }

  // Fetch this page again and swap its live sections; forms outside them are untouched.
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      // Signed out (sent to sign in), or a page gone: shown as the server has it. The server
      // or a proxy failing (5xx): kept as it is, and fetched again in 5 s (a reload would
      // leave a page without this script, that never comes back by itself).
      if (response.redirected || (response.status >= 400 && response.status < 500)) {
        location.reload();
        return;
      }
      if (!response.ok) { refreshLater(); return; }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      state = fresh.body.dataset.state || state;
      document.querySelectorAll("[data-live]").forEach(function (old) {
        const replacement = fresh.getElementById(old.id);
        if (!replacement) { return; }
        const focused = old.contains(document.activeElement) ? document.activeElement : null;
        const open = Array.from(old.querySelectorAll("details[open]")).map(function (d) {
          return d.closest("[data-reminder]") && d.closest("[data-reminder]").dataset.reminder;
        });
        old.replaceWith(replacement);
        open.forEach(function (id) {
          const again = replacement.querySelector('[data-reminder="' + id + '"] details');
          if (again) { again.open = true; }
        });
        if (focused && focused.id) {
          const same = document.getElementById(focused.id);
          if (same) { same.focus(); }
        }
      });
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  // The stream is opened with the page's state token: a change between rendering the page
  // and opening the stream is told, a new alert among it too. When the stream drops, it is
  // opened again with the token of what the page shows by then (the browser's own retry
  // would send the first page's token, and tell an alert already told once more). When it
  // is refused (the session ended while it was down, a proxy's error), the browser gives
  // up: the page must not go on as if live. It is fetched again (a page that cannot be is
  // reloaded: the sign-in form, or the browser's error), and the stream tried again later.
  function listen() {
    const events = new EventSource("/events?since=" + encodeURIComponent(state));
    events.addEventListener("change", changed);
    events.addEventListener("signed_out", function () { location.href = "/login"; });
    events.addEventListener("error", function () {
      const refused = events.readyState === EventSource.CLOSED;
      events.close();
      if (refused) {
        refresh();
        setTimeout(listen, 10000);
      } else {
        setTimeout(listen, 2000);
      }
    });
  }

  function changed(event) {
    const what = JSON.parse(event.data);
    if (what.new_alert && live) {
      live.textContent = "A new alert has arrived.";
      if (!document.getElementById("open-alerts")) {
        const link = document.createElement("a");
        link.href = "/";
        link.textContent = " Open the alerts";
        live.appendChild(link);
      }
    }
    refresh();
  }

  listen();
})();
