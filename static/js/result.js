// Live status on the result page: poll the small status endpoint until the prediction is done or failed,
// then swap in the result panel rendered by the server (same template as a full page load).
(function () {
  "use strict";

  var panel = document.getElementById("result-panel");
  if (!panel || panel.dataset.finished === "true" || !window.fetch) {
    return;
  }
  var url = panel.dataset.statusUrl;
  var interval = 700;
  var maxInterval = 10000;
  var delay = interval;

  function schedule() {
    window.setTimeout(poll, delay);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        delay = interval;
        if (data.status !== panel.dataset.status) {
          panel.innerHTML = data.html;
          panel.dataset.status = data.status;
        }
        if (data.finished) {
          panel.dataset.finished = "true";
          var heading = panel.querySelector("h2");
          if (heading) {
            // Move focus to the verdict so keyboard and screen-reader users land on it.
            heading.setAttribute("tabindex", "-1");
            heading.focus({ preventScroll: true });
          }
          return;
        }
        schedule();
      })
      .catch(function () {
        // Network hiccup or server restart: back off instead of hammering, keep trying.
        delay = Math.min(delay * 2, maxInterval);
        schedule();
      });
  }

  schedule();
})();
