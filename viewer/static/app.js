// The viewer works without JavaScript. This script adds the button that
// copies the summary for the record to the clipboard (without it the
// summary can be selected and copied by hand), and the warning before the
// idle sign-out (without it the server still signs the user out, and the
// next request says so).
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

// The idle sign-out warning (WCAG 2.2.1, Timing Adjustable). The server
// ends a session data-idle-seconds after its last request. A minute before
// that, the page shows the idle-warning dialog, focus on "Stay signed in",
// which POSTs the dialog's form (its CSRF token) to /app/session/extend
// and starts the count again. When the time is up, the page opens the
// start page, which says the user was signed out, so that a shared
// workstation's screen no longer shows a child. Keystrokes and pointer
// movement do not extend the session: only the button does, so that this
// count and the server's agree. Times are read from Date.now() at every
// check, not counted from timers, which a background tab or a sleeping
// computer delays.
document.addEventListener("DOMContentLoaded", function () {
  var dialog = document.getElementById("idle-warning");
  var idle = dialog ? parseInt(dialog.getAttribute("data-idle-seconds"), 10) * 1000 : NaN;
  if (!dialog || !(idle > 0)) {
    return;
  }
  var warnBefore = 60 * 1000; // the warning's "1 minute"
  var slack = 2 * 1000; // open the start page just after the server's sign-out
  var form = dialog.querySelector("form");
  var button = form.querySelector("button");
  var status = dialog.querySelector("[role=status]");
  var started, warned, timer, sending = false;

  var signOut = function () {
    window.location.replace("/app/");
  };
  var warn = function () {
    warned = true;
    status.textContent = "";
    if (typeof dialog.showModal === "function") {
      if (!dialog.open) {
        dialog.showModal();
      }
    } else {
      dialog.setAttribute("open", "");
    }
    button.focus();
  };
  var check = function () {
    clearTimeout(timer);
    var now = Date.now();
    var end = started + idle + slack;
    if (now >= end) {
      signOut();
      return;
    }
    var warnAt = started + idle - warnBefore;
    if (now >= warnAt && !warned) {
      warn();
    }
    var next = warned ? end : warnAt;
    timer = setTimeout(check, Math.max(0, Math.min(next - now, 10 * 1000)));
  };
  var restart = function () {
    started = Date.now();
    warned = false;
    if (typeof dialog.close !== "function") {
      dialog.removeAttribute("open");
    } else if (dialog.open) {
      dialog.close();
    }
    check();
  };

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (sending) {
      return;
    }
    sending = true;
    status.textContent = "";
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      redirect: "error",
    }).then(function (res) {
      sending = false;
      if (res.status === 204) {
        restart();
      } else {
        signOut(); // the session has ended: the start page says why
      }
    }, function () {
      sending = false;
      status.textContent = "The viewer cannot be reached. Check the connection and try again.";
    });
  });
  // A page brought back from the history, or a tab brought to the front,
  // checks at once rather than at its next timer.
  window.addEventListener("pageshow", check);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      check();
    }
  });
  restart();
});
