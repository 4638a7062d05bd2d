// Stacked bars of a customer's events per month and channel (customer 360 page).
(function () {
  const canvas = document.getElementById("activity-chart");
  const source = document.getElementById("activity-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const byChannel = JSON.parse(source.textContent);
  const channels = Object.keys(byChannel);
  const months = channels.length ? Object.keys(byChannel[channels[0]]) : [];
  const palette = ["#3c71f7", "#00a86b", "#f59e0b", "#e11d48", "#7c3aed"];
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: months,
      datasets: channels.map((channel, i) => ({
        label: channel, data: months.map((m) => byChannel[channel][m]), backgroundColor: palette[i % palette.length],
      })),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
})();
