// SAQ's app.js reads the global root_path: set it from this tag's data-root, so no page needs an
// inline script (the dashboard's Content-Security-Policy forbids them).
"use strict";
window.root_path = document.currentScript.dataset.root;
