// wlnode console: the one script, served from the binary (/ui/static/console.js).
// Progressive enhancement only: every page works without it. It adds live events on
// the dashboard (Server-Sent Events from /ui/events, the node's event stream), each
// shown as a readable row. Every word it shows comes from the page (the hidden
// #live-labels list: "k:" + an event type, "f:" + a field, "open" the link text), so
// the catalogue stays the one source of strings.
"use strict";
(function () {
  // The fields shown for each event type, in order.
  var FIELDS = {
    watch_hit: ["watch_name", "ref", "matched_name", "origin", "score"],
    draft_awaiting_approval: ["op", "source_list", "rows", "new", "amended", "withdrawn"],
    peer_down: ["agency", "cause"],
    source_failed: ["source", "class", "error"],
    audit_violation: ["kind", "agency", "origin", "version"],
    consultation: ["kind", "reference", "requester", "origin", "state", "deadline", "from"]
  };

  // Where an event leads, on this console.
  function target(kind, b) {
    var q = encodeURIComponent;
    if (b.consultation_id) { return "/ui/consultations/" + q(b.consultation_id); }
    if (kind === "draft_awaiting_approval" && b.batch_id) { return "/ui/import-batches/" + q(b.batch_id); }
    if (kind === "draft_awaiting_approval") { return "/ui/drafts"; }
    if (b.entry_id && b.origin) { return "/ui/entries/" + q(b.entry_id) + "?origin=" + q(b.origin); }
    if (b.entry_id) { return "/ui/entries/" + q(b.entry_id); }
    return null;
  }

  function show(v) {
    if (typeof v === "number" && Math.floor(v) !== v) { return v.toFixed(3); }
    if (Array.isArray(v)) { return v.join(", "); }
    if (v !== null && typeof v === "object") { return JSON.stringify(v); }
    return String(v);
  }

  // One row: when, what, the event's fields as "label: value", and a link.
  var labels = {};
  function label(key, fallback) { return labels[key] || fallback; }

  function row(list, kind, data) {
    var b;
    try { b = JSON.parse(data); } catch (e) { b = {}; }
    var li = document.createElement("li");
    li.setAttribute("data-event", kind);
    var when = document.createElement("time");
    var at = b.at || new Date().toISOString();
    when.setAttribute("datetime", at);
    // The local time of day as the browser's locale writes it (these events are
    // minutes old at most); the exact UTC time on hover.
    var d = new Date(at);
    var utc = at.replace("T", " ").replace(/\.\d+Z$/, " UTC");
    when.setAttribute("title", utc);
    when.textContent = isNaN(d.getTime()) ? utc : d.toLocaleTimeString();
    li.appendChild(when);
    li.appendChild(document.createTextNode(" "));
    var what = document.createElement("strong");
    // textContent, never innerHTML: event bodies carry names from entries.
    what.textContent = label("k:" + kind, kind);
    li.appendChild(what);
    var parts = [];
    (FIELDS[kind] || []).forEach(function (f) {
      if (b[f] === undefined || b[f] === null || b[f] === "") { return; }
      parts.push(label("f:" + f, f) + ": " + show(b[f]));
    });
    if (parts.length) {
      var span = document.createElement("span");
      span.textContent = " · " + parts.join(" · ");
      li.appendChild(span);
    }
    var to = target(kind, b);
    if (to) {
      li.appendChild(document.createTextNode(" "));
      var a = document.createElement("a");
      a.setAttribute("href", to);
      a.textContent = label("open", "open");
      li.appendChild(a);
    }
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 50) { list.removeChild(list.lastChild); }
  }

  function start() {
    // Marks that the script ran (the JavaScript-off browser test checks its absence).
    document.documentElement.setAttribute("data-js", "on");
    var list = document.getElementById("live-events");
    if (!list || typeof EventSource === "undefined") { return; }
    Array.prototype.forEach.call(document.querySelectorAll("#live-labels [data-key]"), function (e) {
      labels[e.getAttribute("data-key")] = e.textContent;
    });
    var src = new EventSource(list.getAttribute("data-source"));
    src.addEventListener("open", function () { list.setAttribute("data-connected", "1"); });
    Object.keys(FIELDS).concat(["lagged"]).forEach(function (kind) {
      src.addEventListener(kind, function (ev) { row(list, kind, ev.data); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
