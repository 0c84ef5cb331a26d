// Drill-down: a link to a closed section opens it (and every section around it) before the browser scrolls there;
// the filter buttons show all, the correct or the incorrect rows of their table. No network, no library.
(function () {
  "use strict";
  function reveal(id) {
    var el = document.getElementById(id);
    for (var e = el; e; e = e.parentElement) {
      if (e.tagName === "DETAILS") e.open = true;
    }
    return el;
  }
  function fromHash() {
    if (location.hash.length > 1) {
      var el = reveal(decodeURIComponent(location.hash.slice(1)));
      if (el) el.scrollIntoView();
    }
  }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest('a[href^="#"]');
    if (a) {
      reveal(decodeURIComponent(a.getAttribute("href").slice(1)));
      return;
    }
    var b = ev.target.closest("button[data-filter]");
    if (!b) return;
    var box = b.closest(".filters"), want = b.getAttribute("data-filter");
    var rows = document.getElementById(box.getAttribute("data-for")).tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var c = rows[i].getAttribute("data-correct");
      rows[i].hidden = want === "correct" ? c !== "1" : want === "incorrect" ? c !== "0" : false;
    }
    box.querySelectorAll("button").forEach(function (x) {
      x.setAttribute("aria-pressed", String(x === b));
    });
  });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
