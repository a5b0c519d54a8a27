// Small fixes on top of SAQ's app.js, which we serve unchanged.
"use strict";
(function () {
  // SAQ's job page links to "/queues/<name>" without the mount point, which lands on a 404 view.
  // Catch those clicks before app.js's own handler and go to the queue under root_path instead.
  window.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest("a[href^='/queues/']");
    if (!link || !root_path) {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    window.location.assign(root_path + link.getAttribute("href"));
  }, true);

  // On SAQ's job view (which refreshes by polling), offer our live view of the same job. SAQ moves
  // between its views with pushState, so look again after every click and history step.
  const bar = document.querySelector(".lsaq-bar");
  const liveLink = document.createElement("a");
  liveLink.textContent = "Live view of this job \u2192";
  liveLink.dataset.lsaq = "live-job-link";
  function showLiveLink() {
    const path = window.location.pathname.slice((root_path || "").length);
    const match = path.match(/^\/queues\/([^/]+)\/jobs\/([^/]+)$/);
    if (!match || !bar) {
      liveLink.remove();
      return;
    }
    const query = [["queue", match[1]], ["key", match[2]]]
      .map(([name, segment]) => name + "=" + encodeURIComponent(decodeURIComponent(segment))).join("&");
    liveLink.href = root_path + "/job?" + query;
    bar.prepend(liveLink);
  }
  window.addEventListener("popstate", showLiveLink);
  window.addEventListener("click", () => setTimeout(showLiveLink, 0));
  showLiveLink();

  // With Litestar's CSRF protection on, POSTs need the token from the cookie in a header, which
  // app.js does not send: add it to every unsafe same-origin request it makes.
  const cookieName = document.querySelector("meta[name=lsaq-csrf-cookie]");
  const headerName = document.querySelector("meta[name=lsaq-csrf-header]");
  if (cookieName && headerName) {
    const plainFetch = window.fetch.bind(window);
    window.fetch = function (resource, init) {
      const method = ((init && init.method) || "GET").toUpperCase();
      const token = document.cookie.split("; ").find(item => item.startsWith(cookieName.content + "="));
      if (token && !["GET", "HEAD", "OPTIONS"].includes(method)) {
        const headers = new Headers((init && init.headers) || {});
        headers.set(headerName.content, decodeURIComponent(token.slice(cookieName.content.length + 1)));
        init = Object.assign({}, init, { headers: headers });
      }
      return plainFetch(resource, init);
    };
  }
})();
