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
})();
