// Draws the consent chart on the overview page from the JSON the server embedded.
(function () {
  const canvas = document.getElementById("consent-chart");
  const source = document.getElementById("consent-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const shares = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: Object.keys(shares).map((p) => p.replace("_", " ")),
      datasets: [{ label: "% of customers", data: Object.values(shares).map((s) => +(s * 100).toFixed(1)), backgroundColor: "#3c71f7" }],
    },
    options: { indexAxis: "y", scales: { x: { min: 0, max: 100 } }, plugins: { legend: { display: false } } },
  });
})();
