// The body map (templates/spots/_body_map.html): a tap or click on the front or back outline places the spot,
// fills the hidden view/x/y inputs (fractions of the drawing) and moves the marker. The server works out the
// body region from them. Without this script the map stays hidden and the body-area dropdown (.no-js-only) places
// the spot instead. No inline script or style: the Content-Security-Policy allows neither.
(function () {
  "use strict";

  function place(map, svg, event) {
    var form = map.closest("form");
    if (!form) return;
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var local = point.matrixTransform(svg.getScreenCTM().inverse());
    var x = Math.min(1, Math.max(0, local.x / 200));
    var y = Math.min(1, Math.max(0, local.y / 400));
    form.querySelector("[name=view]").value = svg.dataset.view;
    form.querySelector("[name=x]").value = x.toFixed(4);
    form.querySelector("[name=y]").value = y.toFixed(4);
    map.querySelectorAll(".body-map-marker").forEach(function (marker) {
      marker.setAttribute("visibility", "hidden");
    });
    var marker = svg.querySelector(".body-map-marker");
    marker.setAttribute("cx", (x * 200).toFixed(1));
    marker.setAttribute("cy", (y * 400).toFixed(1));
    marker.setAttribute("visibility", "visible");
    var status = form.querySelector("[data-body-map-status]");
    if (status) status.textContent = "Placed on the " + svg.dataset.view + " view.";
  }

  // The map replaces the body-area dropdown: show the map, and keep the (hidden) dropdown out of the form.
  document.querySelectorAll("[data-js-show]").forEach(function (element) {
    element.hidden = false;
  });
  document.querySelectorAll("[data-no-js-fallback]").forEach(function (select) {
    select.disabled = true;
  });

  document.querySelectorAll("[data-body-map]").forEach(function (map) {
    map.querySelectorAll(".body-map-svg").forEach(function (svg) {
      svg.addEventListener("click", function (event) {
        place(map, svg, event);
      });
    });
  });

  // The upload page: the map and the name field matter only for a new spot.
  var spotSelect = document.getElementById("id_spot");
  var newSpot = document.querySelector("[data-new-spot]");
  if (spotSelect && newSpot) {
    var sync = function () {
      newSpot.hidden = spotSelect.value !== "new" && spotSelect.value !== "";
      var nameField = document.querySelector("[data-new-spot-name]");
      if (nameField) nameField.hidden = spotSelect.value !== "new";
    };
    spotSelect.addEventListener("change", sync);
    sync();
  }
})();
