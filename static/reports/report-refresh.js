// Live report: re-fetch this page every few seconds and swap in the fresh figures.
// The interval comes from data-refresh-seconds on #report-live; nothing runs inline (CSP script-src 'self').
(function () {
  "use strict";
  var live = document.getElementById("report-live");
  if (!live || !window.fetch || !window.DOMParser) {
    return;
  }
  var seconds = parseInt(live.getAttribute("data-refresh-seconds"), 10) || 15;
  var status = document.getElementById("report-refresh-status");
  var busy = false;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function openDetails(root) {
    var ids = {};
    root.querySelectorAll("details[id]").forEach(function (d) {
      if (d.open) {
        ids[d.id] = true;
      }
    });
    return ids;
  }

  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("report-live");
        if (!fresh) {
          throw new Error("no report in the response");
        }
        var keepOpen = openDetails(live);
        live.replaceChildren.apply(live, Array.prototype.map.call(fresh.childNodes, function (node) {
          return document.importNode(node, true);
        }));
        Object.keys(keepOpen).forEach(function (id) {
          var d = document.getElementById(id);
          if (d) {
            d.open = true;
          }
        });
        say("live: refreshes every " + seconds + " s");
      })
      .catch(function (err) {
        say("live refresh paused (" + err.message + "); reload the page to retry");
      })
      .then(function () {
        busy = false;
      });
  }

  say("live: refreshes every " + seconds + " s");
  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh();
    }
  });
})();
