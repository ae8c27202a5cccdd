// Keeps the petition page's count and progress bar current while it is open: asks
// GET /api/petitions/{slug} every data-refresh-seconds. Loaded from a file, as the
// pages' Content-Security-Policy allows no inline script.
"use strict";
(function () {
  var section = document.querySelector("[data-count-url]");
  if (!section) { return; }
  var url = section.getAttribute("data-count-url");
  var every = Number(section.getAttribute("data-refresh-seconds")) || 20;
  var count = document.getElementById("count");
  var unit = document.getElementById("count-unit");
  var progress = document.getElementById("progress");
  var goal = document.getElementById("goal");
  var format = new Intl.NumberFormat("fr-FR");

  function number(n) { return format.format(n).replace(/\u202f/g, "\u00a0"); }

  function show(petition) {
    var n = petition.count;
    count.textContent = number(n);
    count.setAttribute("data-count", String(n));
    unit.textContent = n < 2 ? "signature" : "signatures";
    if (!progress || !goal) { return; }
    var thresholds = petition.milestones.map(function (m) { return m.threshold; });
    var next = thresholds.filter(function (t) { return t > n; })[0];
    if (next === undefined) { next = Math.max.apply(null, thresholds); }
    progress.max = next;
    progress.value = Math.min(n, next);
    progress.textContent = number(n) + " sur " + number(next);
    goal.textContent = number(next);
  }

  function refresh() {
    fetch(url, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (petition) { if (petition) { show(petition); } })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }

  setInterval(refresh, every * 1000);
})();
