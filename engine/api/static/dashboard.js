// The journey page's charts, drawn with Chart.js from the figures the page carries in
// <script type="application/json" id="stats-data"> (the JSON of GET /api/journeys/{id}/stats):
// no inline script, so the dashboard's Content-Security-Policy allows only files from here.
"use strict";

(function () {
  const NAVY = "#23305a";
  const GOLD = "#b8a14a";
  const PURPLE = "#7a4ab8";

  function euros(cents) {
    return cents === null ? 0 : cents / 100;
  }

  function funnel(stats) {
    const totals = stats.totals;
    return {
      type: "bar",
      data: {
        labels: ["Signatures", "Emails sent", "Delivered", "Clickers", "Donors"],
        datasets: [{
          label: "People or emails",
          data: [stats.petition.signatures, totals.sent, totals.delivered, totals.clickers, totals.donors],
          backgroundColor: NAVY,
        }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } } },
    };
  }

  function signatures(stats) {
    const days = stats.signatures_by_day.map((d) => d.day);
    const reached = new Map();
    for (const m of stats.milestones) {
      if (m.reached_at) reached.set(m.reached_at.slice(0, 10), m);
    }
    return {
      type: "line",
      data: {
        labels: days,
        datasets: [
          // The count at the end of each day, in steps: a day's riser spans what was signed
          // that day, so that a milestone reached that day sits on it.
          {
            label: "Signatures",
            data: stats.signatures_by_day.map((d) => d.total),
            borderColor: NAVY,
            pointRadius: 0,
            stepped: "before",
          },
          {
            label: "Milestones reached",
            data: days.map((day) => (reached.has(day) ? reached.get(day).threshold : null)),
            borderColor: GOLD,
            backgroundColor: GOLD,
            showLine: false,
            pointRadius: 7,
            pointStyle: "rectRot",
          },
        ],
      },
      options: {
        plugins: {
          tooltip: {
            callbacks: {
              afterLabel(item) {
                if (item.datasetIndex !== 1) return "";
                const m = reached.get(item.label);
                if (!m || !m.produced) return "no email announces it";
                return `${m.email_step}: ${m.produced.donors} donors, ${euros(m.produced.one_off_cents)} € one-off`;
              },
            },
          },
        },
      },
    };
  }

  function revenue(stats) {
    const steps = stats.steps.filter((s) => s.figures !== null);
    return {
      type: "bar",
      data: {
        labels: steps.map((s) => s.id),
        datasets: [
          { label: "One-off", data: steps.map((s) => euros(s.figures.per_1000_emails_cents.one_off)), backgroundColor: NAVY },
          {
            label: "Monthly, annualised",
            data: steps.map((s) => euros(s.figures.per_1000_emails_cents.monthly_annualised)),
            backgroundColor: PURPLE,
          },
        ],
      },
    };
  }

  function draw() {
    const source = document.getElementById("stats-data");
    if (!source || typeof Chart === "undefined") return;
    const stats = JSON.parse(source.textContent);
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    // The axes' numbers in the page's language, as its tables write theirs (140,000),
    // whatever the browser's own locale.
    Chart.defaults.locale = document.documentElement.lang || "en";
    const charts = { funnel, signatures, revenue };
    for (const [id, build] of Object.entries(charts)) {
      const canvas = document.getElementById(id);
      if (canvas) new Chart(canvas, build(stats));
    }
    document.body.dataset.charts = "drawn";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
