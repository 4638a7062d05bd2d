// Draws every <canvas data-chart="ID"> from the Chart.js configuration the server embedded as
// JSON in <script id="ID" type="application/json"> (type, data, options), so that a page's
// chart is described where its figures are computed.
(function () {
  if (typeof Chart === "undefined") return;
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const source = document.getElementById(canvas.dataset.chart);
    if (source) new Chart(canvas, JSON.parse(source.textContent));
  });
})();
