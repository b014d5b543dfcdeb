/* The incident list, live (templates/incidents/incident_list.html). The page works without
 * this file; with it:
 *
 * - Every few seconds (data-interval) it asks the live endpoint (data-live-url: the page's own
 *   filters and page) whether the list changed since the version it shows (data-version). An
 *   unchanged list answers in a few bytes; a changed one sends the counts and the rows rendered
 *   by the server, which replace the old ones. Focus stays on the same link or button when it
 *   is still there. New incidents are announced in the polite status line ("2 new incidents")
 *   and their rows are highlighted. Polling pauses while the tab is hidden and catches up at
 *   once when it is shown again.
 * - "Turn on desktop notifications" (shown only where the browser can notify and has not been
 *   asked yet) asks for permission. Once granted, each poll also asks for incidents assigned to
 *   the reader since the last page they got (data-assigned-after) and shows one notification per
 *   incident, never twice for the same one (its tag, and the ids remembered for this tab).
 * - The "… ago" ages are refreshed on every poll, counted on the server's clock.
 */
(function () {
  "use strict";

  var results = document.getElementById("incident-results");
  if (!results || !window.fetch) return;

  var counts = document.getElementById("incident-counts");
  var status = document.getElementById("live-status");
  var hint = document.getElementById("live-hint");
  var button = document.getElementById("notify-button");

  var liveUrl = results.getAttribute("data-live-url");
  var version = results.getAttribute("data-version");
  var interval = parseInt(results.getAttribute("data-interval"), 10) || 5000;
  var assignedAfter = results.getAttribute("data-assigned-after") || "0";
  var total = parseInt(results.getAttribute("data-total"), 10) || 0;
  // Server time minus this browser's time, so ages don't depend on the browser's clock.
  var clockOffset = Date.parse(results.getAttribute("data-now")) - Date.now() || 0;
  var highestId = highestIncidentId();

  var NOTIFIED_KEY = "oncall.incidentList.notified";
  var timer = null;
  var busy = false;
  var stopped = false;
  var failures = 0;

  if (hint) hint.hidden = false;

  // --- what the list shows -----------------------------------------------------------------

  function highestIncidentId() {
    var highest = 0;
    results.querySelectorAll("[data-incident-id]").forEach(function (row) {
      highest = Math.max(highest, parseInt(row.getAttribute("data-incident-id"), 10) || 0);
    });
    return highest;
  }

  function announce(text) {
    // Emptied first, so the same words said twice in a row are announced twice.
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  // Replace a region's content; if the focus was inside it, put it back on the element with the
  // same id (a title link, a status tab, a page link), else on the region itself.
  function swap(region, html) {
    var active = document.activeElement;
    var focusedId = active && active !== region && region.contains(active) ? active.id : null;
    var hadFocus = focusedId !== null;
    region.innerHTML = html;
    if (!hadFocus) return;
    var again = focusedId && document.getElementById(focusedId);
    if (again) {
      again.focus({ preventScroll: true });
    } else {
      region.setAttribute("tabindex", "-1");
      region.focus({ preventScroll: true });
    }
  }

  // The same words as list_views.age_text: "under a minute", "12 min", "2 h 5 min", "3 d 4 h".
  function ageText(seconds) {
    var minutes = Math.floor(Math.max(seconds, 0) / 60);
    if (minutes < 1) return "under a minute";
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    minutes = minutes % 60;
    if (days) return hours ? days + " d " + hours + " h" : days + " d";
    if (hours) return minutes ? hours + " h " + minutes + " min" : hours + " h";
    return minutes + " min";
  }

  function refreshAges() {
    var now = Date.now() + clockOffset;
    results.querySelectorAll(".age[data-since]").forEach(function (age) {
      var since = Date.parse(age.getAttribute("data-since"));
      if (!isNaN(since)) age.textContent = ageText((now - since) / 1000) + " ago";
    });
  }

  function apply(answer) {
    if (answer.now) clockOffset = Date.parse(answer.now) - Date.now() || clockOffset;
    if (answer.assigned_after !== undefined) {
      assignedAfter = String(answer.assigned_after);
      notify(answer.assigned || []);
    }
    if (!answer.changed) return;
    version = answer.version;
    swap(counts, answer.counts_html);
    swap(results, answer.results_html);
    results.querySelectorAll("[data-incident-id]").forEach(function (row) {
      if (parseInt(row.getAttribute("data-incident-id"), 10) > highestId) {
        row.classList.add("is-new");
      }
    });
    highestId = Math.max(highestId, highestIncidentId());
    var added = answer.counts.all - total;
    total = answer.counts.all;
    if (added > 0) announce(added === 1 ? "1 new incident" : added + " new incidents");
    if (answer.title) document.title = answer.title + " · Oncall";
  }

  // --- polling -------------------------------------------------------------------------------

  function stop(reason) {
    stopped = true;
    window.clearTimeout(timer);
    if (hint) hint.hidden = true;
    announce(reason);
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = null;
    if (stopped || document.hidden) return;
    // After failures (a restart, a network blip) wait longer, up to a minute.
    var wait = Math.min(interval * Math.pow(2, failures), 60000);
    timer = window.setTimeout(poll, wait);
  }

  function poll() {
    if (busy || stopped) return;
    busy = true;
    window.clearTimeout(timer);
    var url = liveUrl + (liveUrl.indexOf("?") < 0 ? "?" : "&") + "v=" + encodeURIComponent(version);
    if (notificationsAllowed()) url += "&assigned_after=" + encodeURIComponent(assignedAfter);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          stop("Live updates stopped: sign in again, then reload the page.");
          return null;
        }
        if (!response.ok) throw new Error("live answer " + response.status);
        return response.json();
      })
      .then(function (answer) {
        failures = 0;
        if (answer) apply(answer);
      })
      .catch(function () {
        failures = Math.min(failures + 1, 4);
      })
      .then(function () {
        busy = false;
        refreshAges();
        schedule();
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      window.clearTimeout(timer);
      timer = null;
    } else {
      poll();
    }
  });

  // --- desktop notifications -----------------------------------------------------------------

  function notificationsAllowed() {
    return "Notification" in window && window.Notification.permission === "granted";
  }

  function notifiedIds() {
    try {
      return JSON.parse(window.sessionStorage.getItem(NOTIFIED_KEY) || "[]");
    } catch (error) {
      return [];
    }
  }

  function rememberNotified(ids) {
    try {
      window.sessionStorage.setItem(NOTIFIED_KEY, JSON.stringify(ids.slice(-500)));
    } catch (error) {
      // Storage full or refused: the notification tag still keeps duplicates apart.
    }
  }

  function notify(incidents) {
    if (!incidents.length || !notificationsAllowed()) return;
    var seen = notifiedIds();
    incidents.forEach(function (incident) {
      if (seen.indexOf(incident.id) >= 0) return;
      seen.push(incident.id);
      try {
        var note = new window.Notification(incident.title, {
          body: incident.body,
          tag: "incident-" + incident.id,
        });
        note.onclick = function () {
          window.focus();
          window.location.assign(incident.url);
          note.close();
        };
      } catch (error) {
        // Some browsers (Chrome on Android) only notify from a service worker: the list and
        // its status line still show the incident.
      }
    });
    rememberNotified(seen);
  }

  if (button && "Notification" in window && window.Notification.permission === "default") {
    button.hidden = false;
    button.addEventListener("click", function () {
      var decided = function (permission) {
        button.hidden = true;
        // The button is gone: give the focus to the heading above it rather than the page.
        var heading = document.querySelector(".list-head h1");
        if (heading) {
          heading.setAttribute("tabindex", "-1");
          heading.focus();
        }
        if (permission === "granted") {
          announce("Desktop notifications are on for incidents assigned to you.");
          poll();
        } else {
          announce("Desktop notifications stay off. Your browser's site settings can change that.");
        }
      };
      window.Notification.requestPermission().then(decided);
    });
  }

  refreshAges();
  schedule();
})();
