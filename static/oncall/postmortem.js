/* Postmortem pages: small enhancements only; every page works without this file.
 *
 * Edit page (form#pm-edit-form):
 *  - live word count of the fields marked data-words (rows ticked "Remove" left out), counted
 *    the way postmortems/words.py counts: runs of non-space characters holding at least one
 *    letter or digit; the message is announced politely once typing pauses;
 *  - the outage duration next to the start and end times;
 *  - a Preview toggle button (aria-pressed) on each Markdown field: pressed, the text goes to the
 *    preview endpoint (POST, with the CSRF token) and the sanitised HTML it returns is shown in
 *    place of the textarea; pressed again, the textarea comes back with the focus;
 *  - "Add a row" buttons for the timeline and the action items (copies of the empty row).
 * Reading page: a Print button.
 */
(function () {
  "use strict";

  var LOW = 400;
  var HIGH = 600;
  var LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

  function countWords(text) {
    if (!text) return 0;
    var tokens = text.match(/\S+/g) || [];
    var count = 0;
    for (var i = 0; i < tokens.length; i++) {
      if (LETTER_OR_DIGIT.test(tokens[i])) count++;
    }
    return count;
  }

  function wordMessage(count) {
    var words = count === 1 ? "word" : "words";
    if (count < LOW) return { state: "below", text: count + " " + words + " — below the " + LOW + "-word target" };
    if (count > HIGH) return { state: "above", text: count + " " + words + " — above the " + HIGH + "-word target" };
    return { state: "within", text: count + " " + words + " — within the " + LOW + "–" + HIGH + " target" };
  }

  function removed(field) {
    var row = field.closest("[data-row]");
    if (!row) return false;
    var box = row.querySelector('input[type="checkbox"][name$="-DELETE"]');
    return Boolean(box && box.checked);
  }

  function setupWordCount(form) {
    var output = document.getElementById("pm-word-count");
    if (!output) return function () {};
    var timer = null;
    function update() {
      var total = 0;
      var fields = form.querySelectorAll("[data-words]");
      for (var i = 0; i < fields.length; i++) {
        if (!removed(fields[i])) total += countWords(fields[i].value);
      }
      var result = wordMessage(total);
      output.className = "pm-wordcount pm-wordcount--" + result.state;
      output.dataset.count = String(total);
      if (output.textContent !== result.text) output.textContent = result.text;
    }
    // Count at once for the eye; the live region is polite, so a screen reader hears the
    // count when typing pauses rather than at every key.
    form.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(update, 250);
    });
    form.addEventListener("change", update);
    update();
    return update;
  }

  function formatDuration(minutes) {
    if (!isFinite(minutes)) return "—";
    if (minutes < 0) return "ends before it starts";
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var mins = minutes % 60;
    var pad = mins < 10 ? "0" + mins : String(mins);
    if (days) return days + " d " + hours + " h " + pad + " min";
    if (hours) return hours + " h " + pad + " min";
    return mins + " min";
  }

  function setupDuration(form) {
    var start = form.querySelector('[name="started_at"]');
    var end = form.querySelector('[name="ended_at"]');
    var output = document.getElementById("pm-duration");
    if (!start || !end || !output) return;
    function update() {
      // Both are wall-clock times in the same zone: read them alike (as UTC) and subtract.
      var a = Date.parse(start.value + "Z");
      var b = Date.parse(end.value + "Z");
      if (isNaN(a) || isNaN(b)) {
        output.textContent = "—";
        return;
      }
      output.textContent = formatDuration(Math.round((b - a) / 60000));
    }
    start.addEventListener("input", update);
    end.addEventListener("input", update);
  }

  function csrfToken(form) {
    var input = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function setupPreviews(form) {
    var url = form.getAttribute("data-preview-url");
    var fields = form.querySelectorAll("[data-md-field]");
    for (var i = 0; i < fields.length; i++) {
      (function (wrapper) {
        var button = wrapper.querySelector("[data-md-toggle]");
        var textarea = wrapper.querySelector("textarea");
        var preview = wrapper.querySelector("[data-md-preview]");
        if (!button || !textarea || !preview || !url) return;
        button.hidden = false;
        button.addEventListener("click", function () {
          if (button.getAttribute("aria-pressed") === "true") {
            button.setAttribute("aria-pressed", "false");
            preview.hidden = true;
            textarea.hidden = false;
            textarea.focus();
            return;
          }
          button.setAttribute("aria-pressed", "true");
          preview.hidden = false;
          textarea.hidden = true;
          preview.textContent = "Loading the preview…";
          var body = new URLSearchParams();
          body.append("text", textarea.value);
          fetch(url, {
            method: "POST",
            credentials: "same-origin",
            headers: { "X-CSRFToken": csrfToken(form), "Content-Type": "application/x-www-form-urlencoded" },
            body: body.toString()
          })
            .then(function (response) {
              return response.json().then(function (data) {
                if (!response.ok) throw new Error(data.error || "The preview failed.");
                return data;
              });
            })
            .then(function (data) {
              // Sanitised by the server (postmortems/markdown.py): safe to insert as HTML.
              preview.innerHTML =
                '<p class="pm-preview__label">Preview</p>' +
                (data.empty ? '<p class="muted">Nothing to preview.</p>' : data.html);
            })
            .catch(function (error) {
              preview.textContent = "No preview: " + (error.message || "the server did not answer") + ".";
            });
        });
      })(fields[i]);
    }
  }

  function setupRows(form, recount) {
    var buttons = form.querySelectorAll("[data-add-row]");
    for (var i = 0; i < buttons.length; i++) {
      (function (button) {
        var prefix = button.getAttribute("data-add-row");
        var template = document.getElementById(prefix + "-template");
        var rows = document.getElementById(prefix + "-rows");
        var total = form.querySelector('[name="' + prefix + '-TOTAL_FORMS"]');
        var max = form.querySelector('[name="' + prefix + '-MAX_NUM_FORMS"]');
        if (!template || !rows || !total) return;
        button.hidden = false;
        button.addEventListener("click", function () {
          var index = parseInt(total.value, 10) || 0;
          if (max && index >= parseInt(max.value, 10)) return;
          var html = template.innerHTML.replace(/__prefix__/g, String(index));
          var holder = document.createElement("div");
          holder.innerHTML = html.trim();
          var row = holder.firstElementChild;
          var legend = row.querySelector("legend");
          if (legend) legend.textContent = legend.textContent.trim() + " " + (index + 1);
          rows.appendChild(row);
          total.value = String(index + 1);
          var first = row.querySelector("input:not([type=hidden]), select, textarea");
          if (first) first.focus();
          recount();
        });
      })(buttons[i]);
    }
    form.addEventListener("change", function (event) {
      var box = event.target;
      if (!box.matches || !box.matches('input[type="checkbox"][name$="-DELETE"]')) return;
      var row = box.closest("[data-row]");
      if (row) row.classList.toggle("pm-row--removed", box.checked);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var printButtons = document.querySelectorAll("[data-print]");
    for (var i = 0; i < printButtons.length; i++) {
      printButtons[i].hidden = false;
      printButtons[i].addEventListener("click", function () { window.print(); });
    }
    var form = document.getElementById("pm-edit-form");
    if (!form) return;
    var recount = setupWordCount(form);
    setupDuration(form);
    setupPreviews(form);
    setupRows(form, recount);
  });
})();
