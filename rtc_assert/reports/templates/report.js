// Filters the example traces by status, probe set, model and regression. Reads data
// attributes and toggles `hidden`; it never writes markup, so model text stays text.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#example-list .example"));
  var buttons = Array.prototype.slice.call(document.querySelectorAll("[data-status-filter]"));
  var probeSet = document.getElementById("filter-probe-set");
  var model = document.getElementById("filter-model");
  var regressed = document.getElementById("filter-regressed");
  var count = document.getElementById("shown-count");
  var status = "";

  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var data = row.dataset;
      var visible =
        (!status || data.status === status) &&
        (!probeSet.value || data.probeSet === probeSet.value) &&
        (!model.value || data.model === model.value) &&
        (!regressed.checked || data.regressed === "1");
      row.hidden = !visible;
      if (visible) {
        shown += 1;
      }
    });
    count.textContent = shown + " of " + rows.length + " examples shown";
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      status = button.dataset.statusFilter;
      buttons.forEach(function (other) {
        other.setAttribute("aria-pressed", String(other === button));
      });
      apply();
    });
  });
  [probeSet, model, regressed].forEach(function (control) {
    control.addEventListener("change", apply);
  });
  apply();
})();
