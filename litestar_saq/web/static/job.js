// The live view of one job (?queue=Q&key=K): status, progress, meta, result and error, updated in
// place from the server's event stream (live.js); polled only when the stream keeps failing. Every
// value from the server goes in as text (textContent), never as HTML.
"use strict";
(function () {
  const main = document.getElementById("lsaq-job");
  const root = main.dataset.root;
  const params = new URLSearchParams(window.location.search);
  const queue = params.get("queue") || "";
  const key = params.get("key") || "";
  const enc = encodeURIComponent;
  const FIELDS = [
    ["status", "Status"], ["function", "Function"], ["kwargs", "Arguments"], ["meta", "Meta"],
    ["attempts", "Attempts"], ["queued", "Queued"], ["started", "Started"], ["completed", "Completed"],
    ["result", "Result"], ["error", "Error"], ["worker_id", "Worker"],
  ];
  const TIMES = new Set(["queued", "started", "completed"]);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value !== undefined && value !== null) node.setAttribute(name, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function message(text, isError) {
    const target = document.getElementById("lsaq-job-message");
    target.className = isError ? "lsaq-error" : "lsaq-muted";
    target.textContent = text;
  }

  // Retry and abort take the key in the path, so a key with "/", "?" or "#" cannot use them.
  const canAct = !/[/?#]/.test(key);
  async function act(action) {
    const response = await fetch(root + "/api/queues/" + enc(queue) + "/jobs/" + key + "/" + action, {
      method: "POST", headers: Object.assign({ "Accept": "application/json" }, window.lsaqCsrfHeaders()),
    }).catch(error => ({ ok: false, statusText: String(error), json: async () => ({}) }));
    const data = await response.json().catch(() => ({}));
    message(response.ok ? action + " requested" : (data.error || response.statusText), !response.ok);
  }

  main.replaceChildren(
    el("hgroup", {}, el("h1", {}, "Job"), el("p", { id: "lsaq-job-key" }, key + " in queue " + queue)),
    el("p", { id: "lsaq-job-message", class: "lsaq-muted" }, ""),
    el("div", { class: "lsaq-progress" },
      el("progress", { id: "lsaq-job-progress", max: "1", value: "0" }),
      el("span", { id: "lsaq-job-progress-text" }, "")),
    el("dl", { class: "lsaq-job-fields" },
      FIELDS.map(([name, title]) => [el("dt", {}, title), el("dd", { "data-field": name }, "")])),
    el("div", { class: "lsaq-toolbar" },
      canAct ? el("button", { id: "lsaq-job-retry", class: "outline", onclick: () => act("retry") }, "Retry") : null,
      canAct ? el("button", { id: "lsaq-job-abort", class: "outline", onclick: () => act("abort") }, "Abort") : null,
      canAct ? el("a", { href: root + "/queues/" + enc(queue) + "/jobs/" + key }, "SAQ's view of this job") : null));

  function show(job) {
    if (!job) return message("The job is gone (its result expired or it was deleted).", true);
    main.dataset.status = job.status || "";
    const progress = typeof job.progress === "number" ? job.progress : 0;
    const bar = document.getElementById("lsaq-job-progress");
    bar.value = progress;
    document.getElementById("lsaq-job-progress-text").textContent = Math.round(progress * 100) + " %";
    for (const cell of main.querySelectorAll("dd[data-field]")) {
      const value = job[cell.dataset.field];
      cell.textContent = value === null || value === undefined ? ""
        : TIMES.has(cell.dataset.field) ? new Date(value).toLocaleString() : String(value);
    }
  }

  async function poll() {
    try {
      const response = await fetch(root + "/api/jobs?key=" + enc(key) + "&queue=" + enc(queue),
        { headers: { "Accept": "application/json" } });
      const data = await response.json();
      if (!response.ok) return message(data.error || response.statusText, true);
      show(data.jobs[0].job);
    } catch (error) {
      message(String(error), true);
    }
  }

  window.lsaqLive(root + "/api/jobs/events?queue=" + enc(queue) + "&key=" + enc(key), {
    job: data => show(data.job),
    broker: data => message(data.error || "", Boolean(data.error)),
  }, poll);
})();
