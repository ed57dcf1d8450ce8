// Draws the dashboard's charts from the JSON the page carries; the tables under them stay for reading,
// and are all there is with JavaScript off or when ECharts did not load.
(function () {
  "use strict";
  var data = document.getElementById("chart-data");
  if (!data || !window.echarts) return;
  var charts = JSON.parse(data.textContent);
  var board = document.querySelector(".dashboard");
  var pieLabel = (board && board.dataset.pieLabel) || "{b}: {c}";  // ECharts' placeholders, worded by the page
  var palette = ["#1f5f8b", "#f9a825", "#2e7d32", "#b71c1c", "#6a1b9a", "#00838f"];
  charts.forEach(function (chart) {
    var box = document.querySelector('[data-chart="' + chart.key + '"]');
    if (!box || chart.kind === "table" || !chart.labels.length) return;
    var view = echarts.init(box, null, { renderer: "svg" });
    var option;
    if (chart.kind === "pie") {
      option = {
        color: palette, tooltip: { trigger: "item" },
        series: [{ type: "pie", radius: "65%", label: { formatter: pieLabel },
          data: chart.labels.map(function (label, i) { return { name: label, value: chart.values[i][0] }; }) }]
      };
    } else {
      // Two series of different units (pupils, yuan) get an axis each.
      var two = chart.series.length === 2 && chart.key !== "workload";
      option = {
        color: palette, tooltip: { trigger: "axis" }, legend: { top: 0 },
        grid: { left: 60, right: two ? 80 : 20, top: 40, bottom: 60 },
        xAxis: { type: "category", data: chart.labels, axisLabel: { interval: 0, rotate: chart.labels.length > 8 ? 30 : 0 } },
        yAxis: two ? [{ type: "value", name: chart.series[0] }, { type: "value", name: chart.series[1] }]
                   : [{ type: "value" }],
        series: chart.series.map(function (name, s) {
          return { name: name, type: two && s === 1 ? "line" : "bar", yAxisIndex: two ? s : 0,
                   stack: chart.key === "workload" ? "total" : undefined,
                   data: chart.values.map(function (row) { return row[s]; }) };
        })
      };
    }
    view.setOption(option);
    window.addEventListener("resize", function () { view.resize(); });
  });
})();
