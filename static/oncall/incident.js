/* The incident page: keyboard shortcuts and live updates. The page works without this file
 * (every action is a plain POST form; a reload shows what changed).
 *
 * Shortcuts: A acknowledge, R resolve (each submits the same form as its button, so the server
 * checks it as any other post), N puts the cursor in the note box. Ignored while typing in a
 * field, and with Ctrl, Alt or Meta held (those belong to the browser).
 *
 * Live: every data-poll-ms the page asks data-live-url whether its version marker is still
 * current; when not, the answer carries the server-rendered regions (data-region="…"), swapped
 * in, and a sentence for the aria-live region. Polling pauses while the tab is hidden and
 * resumes, with an immediate check, when it is shown again. Relative times ("in 4 min") are
 * kept current between updates.
 */
(function () {
  "use strict";

  var root = document.querySelector(".incident-page[data-live-url]");
  if (!root) return;

  // --- keyboard shortcuts --------------------------------------------------------------------

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function submitAction(name) {
    var form = root.querySelector('form[data-action="' + name + '"]');
    if (!form) return false;
    var button = form.querySelector('button[type="submit"]');
    if (form.requestSubmit) form.requestSubmit(button || undefined);
    else if (button) button.click();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) return;
    if (isTyping(event.target)) return;
    var key = (event.key || "").toLowerCase();
    if (key === "a" || key === "r") {
      if (submitAction(key === "a" ? "acknowledge" : "resolve")) event.preventDefault();
    } else if (key === "n") {
      var note = root.querySelector('form[data-action="note"] textarea');
      if (note) {
        event.preventDefault(); // or the "n" lands in the box
        note.focus();
      }
    }
  });

  // A form sent once is not sent again by a second key press or click while the page loads.
  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("data-sending")) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sending", "1");
  });

  // Back to a page kept in the browser's memory: its forms may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    var sent = root.querySelectorAll("form[data-sending]");
    for (var i = 0; i < sent.length; i++) sent[i].removeAttribute("data-sending");
  });

  // --- relative times ------------------------------------------------------------------------

  function relativeText(when, now) {
    var seconds = Math.round((when - now) / 1000);
    if (Math.abs(seconds) < 30) return "now";
    var minutes = Math.round(Math.abs(seconds) / 60);
    var text;
    if (minutes < 60) {
      text = minutes + " min";
    } else if (minutes < 48 * 60) {
      var hours = Math.floor(minutes / 60);
      var rest = minutes % 60;
      text = hours + " h" + (rest ? " " + rest + " min" : "");
    } else {
      text = Math.round(minutes / 1440) + " d";
    }
    return seconds > 0 ? "in " + text : text + " ago";
  }

  function refreshRelativeTimes() {
    var now = Date.now();
    var times = root.querySelectorAll("time[data-relative][datetime]");
    for (var i = 0; i < times.length; i++) {
      var when = Date.parse(times[i].getAttribute("datetime"));
      if (!isNaN(when)) times[i].textContent = relativeText(when, now);
    }
  }

  // --- live updates ----------------------------------------------------------------------------

  var liveUrl = root.getAttribute("data-live-url");
  var version = root.getAttribute("data-version");
  var interval = parseInt(root.getAttribute("data-poll-ms"), 10) || 5000;
  var announcer = document.getElementById("incident-live-status");
  var timer = null;
  var inFlight = false;

  function announce(text) {
    if (!announcer || !text) return;
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function keyOf(element) {
    var keyed = element && element.querySelector("[data-key]");
    return keyed ? keyed.getAttribute("data-key") : null;
  }

  function swap(name, html) {
    var region = root.querySelector('[data-region="' + name + '"]');
    if (!region) return;
    var fresh = document.createElement("div");
    fresh.innerHTML = html;
    // The same set of forms: keep the ones on the page, with whatever is being chosen in them.
    var key = keyOf(region);
    if (key !== null && key === keyOf(fresh)) return;
    var active = document.activeElement;
    var focusedId = active && region.contains(active) ? active.id : null;
    var openDetails = {};
    var details = region.querySelectorAll("details[id]");
    for (var i = 0; i < details.length; i++) openDetails[details[i].id] = details[i].open;
    region.innerHTML = html;
    for (var id in openDetails) {
      var again = document.getElementById(id);
      if (again && region.contains(again)) again.open = openDetails[id];
    }
    if (focusedId) {
      var target = document.getElementById(focusedId);
      if (target) target.focus();
    }
    region.classList.remove("is-updated");
    void region.offsetWidth; // restart the highlight
    region.classList.add("is-updated");
  }

  function apply(data) {
    version = data.version;
    root.setAttribute("data-version", version);
    if (!data.changed) return;
    var regions = data.regions || {};
    for (var name in regions) {
      if (Object.prototype.hasOwnProperty.call(regions, name)) swap(name, regions[name]);
    }
    if (data.title) document.title = data.title + " · Oncall";
    announce(data.announcement);
  }

  function poll() {
    if (inFlight || document.hidden) return;
    inFlight = true;
    var request = new XMLHttpRequest();
    request.open("GET", liveUrl + "?version=" + encodeURIComponent(version || ""));
    request.setRequestHeader("Accept", "application/json");
    request.timeout = 10000;
    request.onload = function () {
      inFlight = false;
      if (request.status !== 200) {
        // Signed out, or the incident is gone or no longer ours: stop asking.
        if (request.status === 403 || request.status === 404) stop();
        return;
      }
      try {
        apply(JSON.parse(request.responseText));
      } catch (error) {
        // A login page instead of JSON (the session ended): stop asking.
        stop();
      }
    };
    request.onerror = request.ontimeout = function () { inFlight = false; };
    request.send();
  }

  function tick() {
    refreshRelativeTimes();
    poll();
  }

  function start() {
    if (timer === null) timer = window.setInterval(tick, interval);
  }

  function stop() {
    if (timer !== null) window.clearInterval(timer);
    timer = null;
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
    } else {
      tick();
      start();
    }
  });

  if (!document.hidden) start();
})();
