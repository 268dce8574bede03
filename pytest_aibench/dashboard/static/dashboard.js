// Draws the page's charts: their traces and layouts come as JSON in #charts, keyed by the
// data-chart name of the element each goes in. A click on a trend point opens its run.
"use strict";
(function () {
  const charts = JSON.parse(document.getElementById("charts").textContent || "{}");
  for (const element of document.querySelectorAll("[data-chart]")) {
    const chart = charts[element.dataset.chart];
    if (!chart) continue;
    Plotly.newPlot(element, chart.data, chart.layout, {
      responsive: true,
      displaylogo: false,
      displayModeBar: "hover",
    });
    element.on("plotly_click", function (event) {
      const point = event.points && event.points[0];
      const run = point && point.customdata && point.customdata[2];
      if (run) window.location.href = "/runs/" + encodeURIComponent(run);
    });
  }
})();
