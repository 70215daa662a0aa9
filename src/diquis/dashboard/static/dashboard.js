// Diquis jobs dashboard: live updates over server-sent events, bulk selection, sign-in.
// Plain script, no build step; loaded with `defer` (the CSP forbids inline script).
(function () {
  "use strict";

  var body = document.body;
  var base = body.getAttribute("data-base") || "";
  var SVG = "http://www.w3.org/2000/svg";

  // -- sign-in: post the form to the login API as JSON, then go back ----------------
  var login = document.getElementById("login-form");
  if (login) {
    login.addEventListener("submit", function (event) {
      event.preventDefault();
      var error = document.getElementById("login-error");
      var button = login.querySelector("button[type=submit]");
      error.hidden = true;
      button.disabled = true;
      fetch(login.getAttribute("data-login-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({
          email: login.elements.email.value,
          password: login.elements.password.value,
        }),
      })
        .then(function (response) {
          if (response.ok) {
            var next = login.getAttribute("data-next") || base + "/";
            window.location.assign(next.indexOf(base + "/") === 0 ? next : base + "/");
            return;
          }
          error.textContent =
            response.status === 401 || response.status === 400
              ? "Wrong e-mail or password."
              : "Sign-in failed (" + response.status + ").";
          error.hidden = false;
          button.disabled = false;
        })
        .catch(function () {
          error.textContent = "Cannot reach the server.";
          error.hidden = false;
          button.disabled = false;
        });
    });
    return;
  }

  // -- bulk selection and confirmations ----------------------------------------------
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.classList && box.classList.contains("select-all")) {
      var table = box.closest("table");
      table.querySelectorAll(".row-select").forEach(function (row) {
        row.checked = box.checked;
      });
    }
    if (box.classList && box.classList.contains("row-select") && !anySelected() && pending) {
      refreshRegion();
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  function anySelected() {
    return document.querySelector(".live-region .row-select:checked") !== null;
  }

  // -- relative times ----------------------------------------------------------------
  function span(seconds) {
    if (seconds < 1) return Math.round(seconds * 1000) + "ms";
    if (seconds < 10) return seconds.toFixed(1) + "s";
    if (seconds < 60) return Math.round(seconds) + "s";
    var m = Math.floor(seconds / 60);
    var s = Math.floor(seconds % 60);
    if (m < 60) return s ? m + "m " + s + "s" : m + "m";
    var h = Math.floor(m / 60);
    m = m % 60;
    if (h < 48) return m ? h + "h " + m + "m" : h + "h";
    return Math.floor(h / 24) + "d";
  }
  function updateTimes() {
    var now = Date.now();
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var diff = (at - now) / 1000;
      if (Math.abs(diff) < 1) el.textContent = "just now";
      else el.textContent = diff > 0 ? "in " + span(diff) : span(-diff) + " ago";
    });
  }
  window.setInterval(updateTimes, 10000);

  // -- live throughput chart (overview) ----------------------------------------------
  var chart = document.getElementById("live-chart");
  var seconds = chart ? parseInt(chart.getAttribute("data-seconds"), 10) || 60 : 60;
  var ok = new Array(seconds).fill(0);
  var fail = new Array(seconds).fill(0);
  var totals = { Succeeded: 0, Failed: 0 };

  function drawChart() {
    if (!chart) return;
    var width = 720, height = 160, left = 36, bottom = 20;
    var padTop = 10;
    var floor = height - bottom;
    var plot = floor - padTop;
    var top = 4;
    for (var i = 0; i < seconds; i++) top = Math.max(top, ok[i] + fail[i]);
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    [0, 0.5, 1].forEach(function (frac) {
      var y = floor - frac * plot;
      var line = document.createElementNS(SVG, "line");
      line.setAttribute("class", "grid");
      line.setAttribute("x1", left);
      line.setAttribute("x2", width);
      line.setAttribute("y1", y);
      line.setAttribute("y2", y);
      chart.appendChild(line);
      var label = document.createElementNS(SVG, "text");
      label.setAttribute("class", "axis");
      label.setAttribute("x", left - 4);
      label.setAttribute("y", y + 4);
      label.setAttribute("text-anchor", "end");
      label.textContent = String(Math.round(top * frac));
      chart.appendChild(label);
    });
    var slot = (width - left) / seconds;
    var bar = slot * 0.75;
    for (var j = 0; j < seconds; j++) {
      var x = left + j * slot + (slot - bar) / 2;
      var hOk = (ok[j] / top) * plot;
      var hFail = (fail[j] / top) * plot;
      if (hOk) chart.appendChild(rect("bar-ok", x, floor - hOk, bar, hOk));
      if (hFail) chart.appendChild(rect("bar-fail", x, floor - hOk - hFail, bar, hFail));
    }
    var now = document.createElementNS(SVG, "text");
    now.setAttribute("class", "axis");
    now.setAttribute("x", width - 2);
    now.setAttribute("y", height - 5);
    now.setAttribute("text-anchor", "end");
    now.textContent = "now";
    chart.appendChild(now);
    var ago = document.createElementNS(SVG, "text");
    ago.setAttribute("class", "axis");
    ago.setAttribute("x", left);
    ago.setAttribute("y", height - 5);
    ago.textContent = "-" + seconds + "s";
    chart.appendChild(ago);
  }
  function rect(cls, x, y, w, h) {
    var r = document.createElementNS(SVG, "rect");
    r.setAttribute("class", cls);
    r.setAttribute("x", x.toFixed(2));
    r.setAttribute("y", y.toFixed(2));
    r.setAttribute("width", w.toFixed(2));
    r.setAttribute("height", h.toFixed(2));
    return r;
  }
  if (chart) {
    drawChart();
    window.setInterval(function () {
      ok.shift();
      ok.push(0);
      fail.shift();
      fail.push(0);
      drawChart();
    }, 1000);
  }
  function countThroughput(state) {
    if (state !== "Succeeded" && state !== "Failed") return;
    totals[state] += 1;
    if (state === "Succeeded") ok[seconds - 1] += 1;
    else fail[seconds - 1] += 1;
    var el = document.querySelector('[data-live-total="' + state + '"]');
    if (el) el.textContent = String(totals[state]);
  }

  // -- refreshing counters and page regions ------------------------------------------
  function debounce(fn, wait) {
    var timer = null;
    return function () {
      if (timer) return;
      timer = window.setTimeout(function () {
        timer = null;
        fn();
      }, wait);
    };
  }

  var refreshCounts = debounce(function () {
    fetch(base + "/api/stats", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        return r.ok ? r.json() : null;
      })
      .then(function (data) {
        if (!data) return;
        document.querySelectorAll("[data-count]").forEach(function (el) {
          var key = el.getAttribute("data-count");
          if (key in data.counts) el.textContent = String(data.counts[key]);
        });
      })
      .catch(function () {});
  }, 250);

  var pending = false;
  var inFlight = false;
  function refreshRegion() {
    var region = document.querySelector(".live-region");
    if (!region) return;
    if (anySelected()) {
      pending = true; // do not drop what the user is selecting; refresh once they are done
      return;
    }
    if (inFlight) {
      pending = true;
      return;
    }
    pending = false;
    inFlight = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { accept: "text/html" },
    })
      .then(function (r) {
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        inFlight = false;
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector(".live-region");
        var current = document.querySelector(".live-region");
        if (!fresh || !current || anySelected()) return;
        current.replaceWith(document.importNode(fresh, true));
        document.title = doc.title;
        if (pending) refreshRegion();
      })
      .catch(function () {
        inFlight = false;
      });
  }
  var refreshSoon = debounce(refreshRegion, 400);
  var refreshNow = debounce(refreshRegion, 60);

  function relevant(jobId) {
    var region = document.querySelector(".live-region");
    if (!region) return false;
    var kind = region.getAttribute("data-refresh");
    if (kind === "list") return true;
    var ids = (region.getAttribute("data-jobs") || "").split(" ");
    return ids.indexOf(String(jobId)) !== -1;
  }

  // -- the live feed -----------------------------------------------------------------
  var status = document.getElementById("live-status");
  function setStatus(state, text) {
    if (!status) return;
    status.setAttribute("data-state", state);
    var label = status.querySelector(".live-text");
    if (label) label.textContent = text;
    status.setAttribute("title", text);
  }
  if (status && window.EventSource) {
    var source = new EventSource(base + "/events");
    source.addEventListener("open", function () {
      setStatus("open", "Live");
      // catch up on whatever changed between rendering this page and the stream opening
      refreshCounts();
      refreshNow();
    });
    source.addEventListener("error", function () {
      setStatus("closed", "Reconnecting");
    });
    source.addEventListener("state", function (event) {
      var change;
      try {
        change = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      countThroughput(change.state);
      refreshCounts();
      if (relevant(change.job_id)) {
        var region = document.querySelector(".live-region");
        if (region && region.getAttribute("data-refresh") === "job") refreshNow();
        else refreshSoon();
      }
    });
    source.addEventListener("resync", function () {
      refreshCounts();
      refreshSoon();
    });
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }
})();

// A running job's page asks again every second (its progress and log are no state
// change, so the live feed does not announce them).
(function () {
  "use strict";
  var busy = false;
  function poll() {
    var region = document.querySelector(".live-region[data-poll]");
    if (!region || busy || document.hidden) return;
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { accept: "text/html" },
    })
      .then(function (r) {
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        busy = false;
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector(".live-region");
        var current = document.querySelector(".live-region[data-poll]");
        if (fresh && current) current.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () {
        busy = false;
      });
  }
  window.setInterval(poll, 1000);
})();
