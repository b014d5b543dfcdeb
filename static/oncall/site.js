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
