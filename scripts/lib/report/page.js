// Drill-down: a link to a closed section opens it (and every section around it) before the browser scrolls there,
// and a link with data-select="key=value" also sets that filter of the section's table; the filter buttons show
// all, the correct or the incorrect rows of their table, each <select data-key=K> beside them the rows whose data-K
// is its value (both apply together). No network, no library.
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
  function apply(box) {
    var pressed = box.querySelector('button[aria-pressed="true"]');
    var want = pressed ? pressed.getAttribute("data-filter") : "all";
    var selects = box.querySelectorAll("select[data-key]");
    var rows = document.getElementById(box.getAttribute("data-for")).tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var c = rows[i].getAttribute("data-correct");
      var hide = want === "correct" ? c !== "1" : want === "incorrect" ? c !== "0" : false;
      for (var j = 0; j < selects.length; j++) {
        var v = selects[j].value;
        if (v && rows[i].getAttribute("data-" + selects[j].getAttribute("data-key")) !== v) hide = true;
      }
      rows[i].hidden = hide;
    }
  }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest('a[href^="#"]');
    if (a) {
      var target = reveal(decodeURIComponent(a.getAttribute("href").slice(1)));
      var choice = a.getAttribute("data-select");
      if (target && choice) {
        var kv = choice.split("="), select = target.querySelector('select[data-key="' + kv[0] + '"]');
        if (select) {
          select.value = kv.slice(1).join("=");
          apply(select.closest(".filters"));
        }
      }
      return;
    }
    var b = ev.target.closest("button[data-filter]");
    if (!b) return;
    var box = b.closest(".filters");
    box.querySelectorAll("button").forEach(function (x) {
      x.setAttribute("aria-pressed", String(x === b));
    });
    apply(box);
  });
  document.addEventListener("change", function (ev) {
    if (ev.target.matches("select[data-key]")) apply(ev.target.closest(".filters"));
  });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
