// Draws every <canvas data-chart="ID"> from the Chart.js configuration the server embedded as
// JSON in <script id="ID" type="application/json"> (rapport.platform.charts.Chart), on page
// load and in fragments htmx brings in later (the customer 360's panels).
(function () {
  function draw(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      if (Chart.getChart(canvas)) return;
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      const box = canvas.parentElement;
      if (box && box.dataset.height) box.style.height = box.dataset.height + "px";
      new Chart(canvas, JSON.parse(source.textContent));
    });
  }
  draw(document);
  document.addEventListener("htmx:load", (event) => draw(event.target));
})();
