/* Oncall portal: small enhancements only. Every page works without this file. */
(function () {
  "use strict";

  // Escape closes the phone menu and puts focus back on its "Menu" button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var menu = document.querySelector(".menu-toggle[open]");
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });

  // After a form came back with errors, bring its error summary into view and focus,
  // so keyboard and screen reader users start from the list of problems.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector(".error-summary[tabindex]");
    if (summary) summary.focus();
  });
})();

/* Schedule pages: copy buttons for the calendar links, and confirmation of dangerous forms.
 *
 * A copy button (class "copy-button", hidden until this script shows it) names the read-only
 * input holding the link with data-copy-target; the result is announced in the .copy-status of
 * the same .copy-field (role="status"). Without the clipboard API (no HTTPS) the input's text is
 * selected and copied with execCommand, or left selected for Ctrl+C. A form with data-confirm
 * asks before it is sent.
 */
(function () {
  "use strict";

  function announce(button, text) {
    var field = button.closest(".copy-field");
    var status = field && field.querySelector(".copy-status");
    if (!status) return;
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  function copyFromInput(button, input) {
    var fallback = function () {
      input.focus();
      input.select();
      var copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (error) {
        copied = false;
      }
      announce(button, copied ? "Copied." : "Selected: press Ctrl+C (⌘C on a Mac) to copy.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () {
        announce(button, "Copied.");
      }, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll(".copy-button[data-copy-target]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".copy-button[data-copy-target]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    if (input) copyFromInput(button, input);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
