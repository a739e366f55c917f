// The site's only script (no framework, no CDN). Pages work without it; it adds two things:
// 1. the result page updates itself while the photo is queued or being analysed;
// 2. the upload button says "Uploading…" and cannot be pressed twice while a large photo is sent.
(function () {
  "use strict";

  function watchResult(panel) {
    if (panel.dataset.finished === "true" || !window.fetch) {
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
          if (response.status === 404 || response.status === 403) {
            // Deleted in another tab, or logged out: nothing more to wait for.
            return null;
          }
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          if (data === null) {
            return;
          }
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
  }

  function guardUpload(form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitting === "true") {
        event.preventDefault();
        return;
      }
      form.dataset.submitting = "true";
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.setAttribute("aria-disabled", "true");
        button.textContent = button.dataset.busyLabel || "Sending…";
      }
    });
    // Coming back with the browser's Back button must not leave the form stuck.
    window.addEventListener("pageshow", function () {
      form.dataset.submitting = "false";
    });
  }

  var panel = document.getElementById("result-panel");
  if (panel) {
    watchResult(panel);
  }
  var uploadForm = document.getElementById("upload-form");
  if (uploadForm) {
    guardUpload(uploadForm);
  }
})();
