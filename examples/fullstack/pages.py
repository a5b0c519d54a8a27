"""The example's HTML pages: plain HTML and a few lines of JavaScript, no build step."""

from __future__ import annotations

HOME = """<!doctype html>
<html><head><meta charset="utf-8"><title>litestar-saq example</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>litestar-saq example</h1>
<h2>Sign up</h2>
<p>Stores you and enqueues a welcome email in one transaction (on PostgreSQL).</p>
<form id="signup"><input id="email" type="email" placeholder="you@example.com" required>
<button>Sign up</button></form>
<pre id="signup-out"></pre>
<h2>Report</h2>
<p>A long job with heartbeats and live progress.</p>
<button id="report">Build a report</button>
<p><a href="/outbox">Sent emails</a> · <a href="/saq/">Dashboard</a> (log in as admin / admin)</p>
<script>
document.getElementById("signup").onsubmit = async (event) => {
  event.preventDefault();
  const response = await fetch("/signup", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({email: document.getElementById("email").value})});
  document.getElementById("signup-out").textContent = JSON.stringify(await response.json(), null, 2);
};
document.getElementById("report").onclick = async () => {
  const {key} = await (await fetch("/reports", {method: "POST"})).json();
  location.href = "/reports/" + encodeURIComponent(key);
};
</script></body></html>"""

REPORT = """<!doctype html>
<html><head><meta charset="utf-8"><title>Report</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>Report <code id="key"></code></h1>
<progress id="bar" max="1" value="0" style="width: 100%"></progress>
<pre id="out">waiting for a worker…</pre>
<p><a href="/">Back</a></p>
<script>
const key = decodeURIComponent(location.pathname.split("/").pop());
document.getElementById("key").textContent = key;
async function poll() {
  const job = await (await fetch("/jobs/" + encodeURIComponent(key))).json();
  document.getElementById("bar").value = job.progress || 0;
  document.getElementById("out").textContent = JSON.stringify(job, null, 2);
  if (!["complete", "failed", "aborted"].includes(job.status)) setTimeout(poll, 300);
}
poll();
</script></body></html>"""

LOGIN = """<!doctype html>
<html><head><meta charset="utf-8"><title>Log in</title></head>
<body style="font-family: sans-serif; max-width: 20rem; margin: 2rem auto">
<h1>Log in</h1>
<form method="post">
<p><input name="username" placeholder="username" required></p>
<p><input name="password" type="password" placeholder="password" required></p>
<button>Log in</button></form></body></html>"""
