// The operations page: queue counts, failed and aborted jobs with retry, find a job by key,
// throughput, workers. Updated live from the server's event stream (live.js), polled only when the
// stream keeps failing. Plain DOM, no build step; every value from the server goes in as text.
"use strict";
(function () {
  const main = document.getElementById("ops");
  const root = main.dataset.root;
  const THROUGHPUT_REFRESH_MS = 30000; // the chart scans stored jobs: when polling, refresh it less often
  const MINUTES = 30;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    queues: [],
    queue: new URLSearchParams(window.location.search).get("queue"),
    throughputAt: 0, // when the chart was last fetched; 0 forces a fetch
    live: null, // the page's event stream
  };
  const openDetails = new Set(); // keys whose error is unfolded, kept open across refreshes

  // --- helpers ------------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null) {
        node.append(child instanceof Node ? child : String(child));
      }
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  async function request(method, path, body) {
    try {
      const response = await fetch(root + "/api" + path, {
        method: method,
        headers: Object.assign({ "Accept": "application/json", "Content-Type": "application/json" },
          method === "GET" ? {} : window.lsaqCsrfHeaders()),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok && !data.error) data.error = response.status + " " + response.statusText;
      return data;
    } catch (error) {
      return { error: String(error) };
    }
  }

  const enc = encodeURIComponent;
  const time = ms => (ms ? new Date(ms).toLocaleString() : "");
  const ago = ms => (ms ? Math.max(0, Math.round((Date.now() - ms) / 1000)) + " s ago" : "unknown");
  const lastLine = text => String(text || "").trim().split("\n").pop();
  // SAQ's own job view cannot open keys with "/", "?" or "#": its client routes match path segments.
  const jobHref = (queue, key) => root + "/job?queue=" + enc(queue) + "&key=" + enc(key);

  function replace(id, ...children) {
    const section = document.getElementById(id);
    section.replaceChildren(...children.flat());
  }

  function message(text, isError) {
    const target = document.getElementById("lsaq-message");
    target.className = isError ? "lsaq-error" : "lsaq-muted";
    target.textContent = text;
  }

  // After an action, show its effect at once rather than when the stream next reports a change.
  async function act(action) {
    try {
      await action();
    } finally {
      state.throughputAt = 0;
      await refresh();
    }
  }

  // --- actions ------------------------------------------------------------------------------------
  async function retry(keys) {
    const result = await request("POST", "/queues/" + enc(state.queue) + "/retry-failed", { keys: keys });
    if (result.error) return message(result.error, true);
    const skipped = result.skipped.length ? ", skipped " + result.skipped.length : "";
    message("retried " + result.retried.length + " job(s)" + skipped, false);
  }

  async function find(event) {
    event.preventDefault();
    const key = document.getElementById("lsaq-find-key").value.trim();
    if (!key) return;
    const result = await request("GET", "/jobs?key=" + enc(key));
    if (result.error) return replace("lsaq-found", el("p", { class: "lsaq-error" }, result.error));
    replace("lsaq-found", jobTable(result.jobs.map(match => Object.assign({ queue: match.queue }, match.job)), true));
  }

  // --- views --------------------------------------------------------------------------------------
  function jobTable(jobs, showQueue) {
    const rows = jobs.map(job => {
      const keyCell = el("a", { href: jobHref(job.queue, job.key) }, job.key);
      const error = job.error
        ? el("details", { open: openDetails.has(job.key), ontoggle: event => {
            if (event.target.open) openDetails.add(job.key); else openDetails.delete(job.key);
          } }, el("summary", {}, lastLine(job.error)), el("pre", {}, job.error))
        : "";
      const retryButton = el("button", {
        class: "lsaq-small-button outline", "data-key": job.key,
        onclick: () => act(() => retry([job.key])),
      }, "Retry");
      return el("tr", { "data-key": job.key },
        showQueue ? el("td", {}, job.queue) : null,
        el("td", {}, keyCell),
        el("td", {}, job.function),
        el("td", { class: "lsaq-status-" + (job.status || "new") }, job.status || "new"),
        el("td", {}, job.attempts || 0),
        el("td", {}, time(job.completed)),
        el("td", {}, error),
        el("td", {}, showQueue && !["failed", "aborted"].includes(job.status) ? "" : retryButton));
    });
    return el("div", { class: "lsaq-scroll" }, el("table", { class: "lsaq-table" },
      el("thead", {}, el("tr", {}, showQueue ? el("th", {}, "Queue") : null,
        ["Key", "Function", "Status", "Attempts", "Finished", "Error", ""].map(title => el("th", {}, title)))),
      el("tbody", {}, rows)));
  }

  function deadLetters(data) {
    if (data.error) return el("p", { class: "lsaq-error" }, data.error);
    if (!data.jobs.length) return el("p", { class: "lsaq-muted", id: "lsaq-no-dead" }, "No failed or aborted jobs.");
    const keys = data.jobs.map(job => job.key);
    const more = data.total > keys.length ? " (of " + data.total + ")" : "";
    return [
      el("div", { class: "lsaq-toolbar" },
        el("button", { id: "lsaq-retry-all", onclick: () => act(() => retry(keys)) },
          "Retry all " + keys.length + " shown"),
        el("span", { class: "lsaq-muted" }, keys.length + " shown" + more + ", newest first")),
      jobTable(data.jobs.map(job => Object.assign({ queue: state.queue }, job)), false),
    ];
  }

  function chart(data) {
    if (data.error) return el("p", { class: "lsaq-error" }, data.error);
    const width = 600, height = 150, left = 30, bottom = 20, top = 8;
    const buckets = data.complete.length;
    const peak = Math.max(1, ...data.complete.map((count, i) => count + data.failed[i]));
    const barWidth = (width - left) / buckets;
    const y = count => (height - bottom - top) * (count / peak);
    const graphic = svg("svg", { class: "lsaq-chart", id: "lsaq-chart", viewBox: "0 0 " + width + " " + height,
      role: "img", "aria-label": "jobs completed and failed per minute" },
      svg("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom }),
      svg("text", { x: 0, y: top + 8 }, peak),
      svg("text", { x: 0, y: height - bottom }, 0),
      svg("text", { x: left, y: height - 4 }, "-" + buckets + " min"),
      svg("text", { x: width - 24, y: height - 4 }, "now"));
    data.complete.forEach((complete, i) => {
      const failed = data.failed[i];
      const x = left + i * barWidth + 1;
      const label = new Date(data.start + i * data.bucket_ms).toLocaleTimeString() + ": " +
        complete + " complete, " + failed + " failed";
      const base = height - bottom;
      graphic.append(svg("g", {},
        svg("title", {}, label),
        svg("rect", { class: "lsaq-complete", x: x, width: barWidth - 2, y: base - y(complete), height: y(complete) }),
        svg("rect", { class: "lsaq-failed", x: x, width: barWidth - 2, y: base - y(complete) - y(failed), height: y(failed) })));
    });
    const sum = counts => counts.reduce((a, b) => a + b, 0);
    return [
      graphic,
      el("p", { class: "lsaq-muted" },
        el("span", { class: "lsaq-legend-complete" }, "■ complete " + sum(data.complete)), "  ",
        el("span", { class: "lsaq-legend-failed" }, "■ failed " + sum(data.failed)),
        " in the last " + buckets + " minutes, from finished jobs the broker still keeps (each for its ttl)" +
        (data.truncated ? "; only the first " + data.scanned + " stored jobs were counted" : "") + "."),
    ];
  }

  // Counts change every second while jobs run: update the cells in place, rebuild only for new queues.
  function showCounts(queues) {
    const body = document.querySelector("#lsaq-queues tbody");
    const names = queues.map(queue => queue.name);
    if (body.dataset.names !== JSON.stringify(names)) {
      body.dataset.names = JSON.stringify(names);
      body.replaceChildren(...queues.map(queue => el("tr", { "data-queue": queue.name },
        el("td", {}, queue.name),
        ["queued", "active", "scheduled", "workers"].map(field => el("td", { "data-field": field })))));
    }
    for (const queue of queues) {
      const row = body.querySelector("tr[data-queue='" + CSS.escape(queue.name) + "']");
      for (const cell of row.querySelectorAll("td[data-field]")) {
        cell.textContent = String(queue[cell.dataset.field] ?? "");
      }
    }
  }

  function showQueueNames(names) {
    state.queues = names;
    const picker = document.getElementById("lsaq-queue");
    if (picker.dataset.names === JSON.stringify(names)) return;
    picker.dataset.names = JSON.stringify(names);
    picker.replaceChildren(...names.map(name => el("option", { value: name, selected: name === state.queue }, name)));
  }

  function workers(data) {
    if (data.error) return el("p", { class: "lsaq-error" }, data.error);
    const live = data.workers.filter(worker => !state.queue || worker.queue === state.queue);
    if (!live.length) return el("p", { class: "lsaq-muted" }, "No live workers.");
    return el("div", { class: "lsaq-scroll" }, el("table", { class: "lsaq-table", id: "lsaq-workers-table" },
      el("thead", {}, el("tr", {}, ["Worker", "Host / pid", "Complete", "Failed", "Retried", "Aborted",
        "Uptime", "Last heartbeat"].map(title => el("th", {}, title)))),
      el("tbody", {}, live.map(worker => el("tr", {},
        el("td", {}, worker.id),
        el("td", {}, [worker.metadata.host, worker.metadata.pid].filter(Boolean).join(" / ")),
        el("td", {}, worker.stats.complete), el("td", {}, worker.stats.failed),
        el("td", {}, worker.stats.retried), el("td", {}, worker.stats.aborted),
        el("td", {}, Math.round((worker.stats.uptime || 0) / 1000) + " s"),
        el("td", { title: time(worker.last_heartbeat) }, ago(worker.last_heartbeat)))))));
  }

  // --- page ---------------------------------------------------------------------------------------
  function skeleton() {
    const picker = el("select", { id: "lsaq-queue", "aria-label": "queue", onchange: event => {
      state.queue = event.target.value;
      const url = new URL(window.location.href);
      url.searchParams.set("queue", state.queue);
      window.history.replaceState(null, "", url);
      openDetails.clear();
      state.throughputAt = 0;
      connect();
    } });
    main.replaceChildren(
      el("hgroup", {}, el("h1", {}, "Operations"), el("p", { id: "lsaq-message", class: "lsaq-muted" }, "")),
      el("div", { class: "lsaq-toolbar" }, el("label", { for: "lsaq-queue" }, "Queue"), picker),
      el("section", {}, el("h2", {}, "Queues"), el("div", { class: "lsaq-scroll" },
        el("table", { class: "lsaq-table", id: "lsaq-queues" },
          el("thead", {}, el("tr", {}, ["Queue", "Queued", "Active", "Scheduled", "Workers"].map(title => el("th", {}, title)))),
          el("tbody", {})))),
      el("section", {}, el("h2", {}, "Find a job"),
        el("form", { class: "lsaq-toolbar", onsubmit: find },
          el("input", { id: "lsaq-find-key", type: "search", placeholder: "job key, e.g. cron:cleanup", "aria-label": "job key" }),
          el("button", { type: "submit" }, "Find")),
        el("div", { id: "lsaq-found" })),
      el("section", {}, el("h2", {}, "Throughput per minute"), el("div", { id: "lsaq-throughput" })),
      el("section", {}, el("h2", {}, "Failed and aborted jobs"), el("div", { id: "lsaq-dead" })),
      el("section", {}, el("h2", {}, "Live workers"), el("div", { id: "lsaq-workers" })));
  }

  // Polling: what the page does when its event stream keeps failing, and once after an action.
  async function refresh() {
    const listing = await request("GET", "/queues");
    if (listing.error) return message(listing.error, true);
    showCounts(listing.queues);
    showQueueNames(listing.queues.map(queue => queue.name));
    if (!state.queues.includes(state.queue)) state.queue = state.queues[0] || null;
    if (!state.queue) return message("No queues are configured.", false);
    const queue = "/queues/" + enc(state.queue);
    const chartDue = Date.now() - state.throughputAt > THROUGHPUT_REFRESH_MS;
    const [dead, throughput, live] = await Promise.all([
      request("GET", queue + "/jobs?status=failed,aborted&limit=50"),
      chartDue ? request("GET", queue + "/throughput?minutes=" + MINUTES) : null,
      request("GET", "/workers"),
    ]);
    replace("lsaq-dead", deadLetters(dead));
    if (throughput) {
      replace("lsaq-throughput", chart(throughput));
      state.throughputAt = Date.now();
    }
    replace("lsaq-workers", workers(live));
    main.dataset.refreshed = String(Date.now());
  }

  function connect() {
    if (state.live) state.live.close();
    const query = state.queue ? "?queue=" + enc(state.queue) : "";
    state.live = window.lsaqLive(root + "/api/events" + query, {
      queues: data => {
        showCounts(data.queues);
        showQueueNames(data.queues.map(queue => queue.name));
        if (!state.queues.includes(state.queue)) {
          state.queue = state.queues[0] || null;
          if (!state.queue) return message("No queues are configured.", false);
          connect(); // now with the queue whose failures to show
        }
      },
      workers: data => replace("lsaq-workers", workers(data)),
      failures: data => { if (data.queue === state.queue) replace("lsaq-dead", deadLetters(data)); },
      throughput: data => { if (data.queue === state.queue) replace("lsaq-throughput", chart(data)); },
      broker: data => message(data.error || "", Boolean(data.error)),
    }, refresh);
  }

  skeleton();
  connect();
})();
