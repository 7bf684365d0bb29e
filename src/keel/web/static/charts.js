// Draws every chart on the page from the figure the server embedded in `data-figure` (JSON), with
// the Plotly bundle Keel serves from the installed `plotly` package. Without JavaScript, the data
// table under each chart says the same.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("div.chart[data-figure]").forEach(function (element) {
    var figure = JSON.parse(element.getAttribute("data-figure"));
    var layout = Object.assign({ autosize: true, margin: { l: 48, r: 16, t: 16, b: 40 } }, figure.layout || {});
    window.Plotly.newPlot(element, figure.data || [], layout, { displaylogo: false, displayModeBar: false, responsive: true });
  });
});
