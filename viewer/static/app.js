// The viewer works without JavaScript. This script only adds the button
// that copies the summary for the record to the clipboard; without it the
// summary can be selected and copied by hand.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("copy-summary");
  var summary = document.getElementById("summary");
  var status = document.getElementById("copy-status");
  if (!button || !summary) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var done = function () {
      if (status) {
        status.textContent = "Summary copied. Paste it into the patient's record.";
      }
    };
    var fallback = function () {
      summary.focus();
      summary.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      if (ok) {
        done();
      } else if (status) {
        status.textContent = "The summary is selected: copy it with Ctrl+C.";
      }
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(summary.value).then(done, fallback);
    } else {
      fallback();
    }
  });
});
