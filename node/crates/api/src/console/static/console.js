// wlnode console: the one script, served from the binary (/ui/static/console.js).
// Progressive enhancement only: every page works without it. It adds live events on
// the dashboard (Server-Sent Events from /ui/events, the node's event stream).
"use strict";
(function () {
  function start() {
    var list = document.getElementById("live-events");
    if (!list || typeof EventSource === "undefined") { return; }
    var src = new EventSource(list.getAttribute("data-source"));
    src.addEventListener("open", function () { list.setAttribute("data-connected", "1"); });
    var kinds = ["watch_hit", "draft_awaiting_approval", "peer_down", "source_failed", "lagged"];
    kinds.forEach(function (kind) {
      src.addEventListener(kind, function (ev) {
        var li = document.createElement("li");
        li.setAttribute("data-event", kind);
        // textContent, never innerHTML: event bodies carry names from entries.
        li.textContent = new Date().toISOString() + "  " + kind + "  " + ev.data;
        list.insertBefore(li, list.firstChild);
        while (list.children.length > 50) { list.removeChild(list.lastChild); }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
