// Spend and orders per customer for paying, free and non-members on the membership page.
(function () {
  const source = document.getElementById("membership-data");
  const canvas = document.getElementById("membership-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Spend per customer", data: data.spend_per_customer, backgroundColor: "#00a86b", yAxisID: "spend" },
        { label: "Orders per customer", data: data.orders_per_customer, backgroundColor: "#3b82f6", yAxisID: "orders" },
      ],
    },
    options: {
      scales: {
        spend: { type: "linear", position: "left", beginAtZero: true },
        orders: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false } },
      },
    },
  });
})();
