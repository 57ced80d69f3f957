// tmirror console: the live plot of a session's copies per second. Every two seconds it asks
// the server for the session's delivery and draws the last five minutes of samples as an SVG
// polyline. No library, nothing fetched from elsewhere (the page's Content-Security-Policy
// allows this file and requests to this server only).
(function () {
  "use strict";
  var figure = document.getElementById("plot");
  if (!figure) {
    return;
  }
  var source = figure.getAttribute("data-source");
  var line = document.getElementById("plot-line");
  var maxLabel = document.getElementById("plot-max");
  var nowLabel = document.getElementById("plot-now");
  var count = document.getElementById("plot-samples");
  var WINDOW_MS = 5 * 60 * 1000;
  var WIDTH = 600;
  var HEIGHT = 200;
  var TOP = 20;
  var BOTTOM = 185;
  var samples = [];

  function draw() {
    var now = Date.now();
    samples = samples.filter(function (s) { return now - s.t <= WINDOW_MS; });
    var max = 1;
    samples.forEach(function (s) { if (s.v > max) { max = s.v; } });
    var points = samples.map(function (s) {
      var x = WIDTH - ((now - s.t) / WINDOW_MS) * WIDTH;
      var y = BOTTOM - (s.v / max) * (BOTTOM - TOP);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    line.setAttribute("points", points.join(" "));
    maxLabel.textContent = max.toFixed(1);
    count.textContent = String(samples.length);
    figure.setAttribute("data-samples", String(samples.length));
    figure.setAttribute(
      "data-values",
      samples.map(function (s) { return s.v; }).join(" ")
    );
  }

  function poll() {
    fetch(source, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          figure.setAttribute("data-state", "signed-out");
          nowLabel.textContent = "signed out";
          return null;
        }
        return r.ok ? r.json() : null;
      })
      .then(function (d) {
        if (d) {
          samples.push({ t: Date.now(), v: d.copies_per_second });
          nowLabel.textContent = d.copies_per_second.toFixed(1);
          draw();
        }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () {
        if (figure.getAttribute("data-state") !== "signed-out") {
          setTimeout(poll, 2000);
        }
      });
  }

  poll();
})();
