// Members per tier on the loyalty program page.
(function () {
  const source = document.getElementById("tier-data");
  const canvas = document.getElementById("tier-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [{ label: "Members", data: data.members, backgroundColor: ["#9ca3af", "#94a3b8", "#d4a017"] }],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });
})();
