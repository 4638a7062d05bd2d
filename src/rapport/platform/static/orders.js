// On-time delivery share charts on the orders page.
(function () {
  const source = document.getElementById("promise-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  for (const [group, id] of [["channel", "promise-channel"], ["carrier", "promise-carrier"]]) {
    const canvas = document.getElementById(id);
    if (!canvas) continue;
    new Chart(canvas, {
      type: "bar",
      data: { labels: Object.keys(data[group]), datasets: [{ label: "% on time", data: Object.values(data[group]), backgroundColor: "#00a86b" }] },
      options: { scales: { y: { min: 0, max: 100 } }, plugins: { legend: { display: false } } },
    });
  }
  const riskCanvas = document.getElementById("risk-distribution");
  if (riskCanvas && data.risk && data.risk.model) {
    new Chart(riskCanvas, {
      type: "bar",
      data: { labels: data.risk.bands, datasets: [{ label: "orders", data: data.risk.counts, backgroundColor: "#f59e0b" }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
    });
  }
})();
