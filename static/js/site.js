// The site's only script (no framework, no CDN). Pages work without it; it adds two things:
// 1. the result page updates itself while the photo is queued or being analysed;
// 2. the upload button says "Uploading…" and cannot be pressed twice while a large photo is sent.
(function () {
  "use strict";

  // Wording meant only for pages whose script runs ("this page updates by itself") shows from here on.
  document.documentElement.classList.add("js");

  // The result arrived while the page was open: offer its map (or drop the waiting toggle when there is none).
  function showHeatmap(url) {
    var toggle = document.getElementById("heatmap-toggle");
    var overlay = document.querySelector(".heatmap-overlay");
    var label = document.querySelector("label[for=heatmap-toggle]");
    if (!toggle || !overlay || !label) {
      return;
    }
    if (url) {
      overlay.src = url;
      toggle.hidden = false;
      label.hidden = false;
    } else {
      toggle.remove();
      label.remove();
      overlay.remove();
    }
  }

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
            showHeatmap(data.heatmap_url);
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

  // A photo over the limit is refused here, before a byte is sent: the note and body site stay as typed.
  function photoTooLarge(form) {
    var input = form.querySelector("input[type=file][data-max-bytes]");
    if (!input) {
      return false;
    }
    var file = input.files && input.files[0];
    var tooLarge = Boolean(file) && file.size > Number(input.dataset.maxBytes);
    var errorId = input.id + "-size-error";
    var shown = document.getElementById(errorId);
    if (tooLarge && !shown) {
      shown = document.createElement("p");
      shown.id = errorId;
      shown.className = "form-error";
      shown.setAttribute("role", "alert");
      shown.textContent = input.dataset.tooLargeMessage;
      input.parentNode.insertBefore(shown, input);
    } else if (!tooLarge && shown) {
      shown.parentNode.removeChild(shown);
    }
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== errorId;
    });
    if (tooLarge) {
      described.unshift(errorId);
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
    input.setAttribute("aria-describedby", described.join(" "));
    return tooLarge;
  }

  function guardUpload(form) {
    var input = form.querySelector("input[type=file][data-max-bytes]");
    if (input) {
      input.addEventListener("change", function () {
        photoTooLarge(form);
      });
    }
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitting === "true") {
        event.preventDefault();
        return;
      }
      if (photoTooLarge(form)) {
        event.preventDefault();
        input.focus();
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
