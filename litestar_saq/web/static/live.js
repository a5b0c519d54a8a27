// What our pages (ops, job) share. Live updates: one EventSource per page, JSON events handed to the
// page's handlers; polling is only the fallback, when the stream fails several times in a row (a proxy
// that buffers or drops event streams, the server's stream limit reached).
"use strict";

// Litestar's CSRF protection, if the app uses it, names its cookie and header in <meta> tags.
window.lsaqCsrfHeaders = function () {
  const cookieName = document.querySelector("meta[name=lsaq-csrf-cookie]");
  const headerName = document.querySelector("meta[name=lsaq-csrf-header]");
  if (!cookieName || !headerName) return {};
  const token = document.cookie.split("; ").find(item => item.startsWith(cookieName.content + "="));
  return token ? { [headerName.content]: decodeURIComponent(token.slice(cookieName.content.length + 1)) } : {};
};

window.lsaqLive = function (url, handlers, poll) {
  const FAILURES_BEFORE_POLLING = 3;
  const POLL_MS = 5000;
  let source = null;
  let failures = 0;
  let timer = null;
  let closed = false;

  function status(value) {
    document.body.dataset.lsaqLive = value; // "open", "connecting", "polling" or "closed"
  }

  function open() {
    if (closed) return;
    status("connecting");
    source = new EventSource(url);
    source.addEventListener("open", () => status("open"));
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, event => {
        if (typeof event.data !== "string") return; // not one of ours (the connection's own events)
        failures = 0;
        handle(JSON.parse(event.data));
      });
    }
    // The server ends a stream after its maximum lifetime or when it stops: reconnect right away.
    source.addEventListener("end", () => {
      source.close();
      setTimeout(open, 100);
    });
    source.addEventListener("error", () => {
      failures += 1;
      if (failures >= FAILURES_BEFORE_POLLING) {
        source.close();
        startPolling();
      } else if (source.readyState === EventSource.CLOSED) {
        // An HTTP error (401, 503…) stops EventSource for good: try again after a pause.
        setTimeout(open, 1000 * failures);
      }
    });
  }

  function startPolling() {
    if (closed || timer !== null) return;
    status("polling");
    poll();
    timer = setInterval(() => { if (document.visibilityState !== "hidden") poll(); }, POLL_MS);
  }

  open();
  return {
    close() {
      closed = true;
      if (source) source.close();
      if (timer !== null) clearInterval(timer);
      status("closed");
    },
  };
};
