// Diquis jobs dashboard: live updates over server-sent events (in place, keeping focus and
// scroll), local times, toasts, bulk selection, log-in.
// Plain script, no build step; loaded with `defer` (the CSP forbids inline script).
(function () {
  "use strict";

  var body = document.body;
  var base = body.getAttribute("data-base") || "";
  var SVG = "http://www.w3.org/2000/svg";
  var TICK_MS = 20000; // relative times tick as often as the web app's

  // -- times: local on the page, UTC in the tooltip (the web app's policy) -----------
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
  var localFormat = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
  function utcText(date) {
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  function updateTimes(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) return;
      var local = localFormat.format(at);
      if (el.getAttribute("data-kind") === "local") {
        el.textContent = local;
        el.title = utcText(at);
        return;
      }
      var diff = (at.getTime() - now) / 1000;
      el.textContent =
        Math.abs(diff) < 1 ? "just now" : diff > 0 ? "in " + span(diff) : span(-diff) + " ago";
      el.title = local + " · " + utcText(at);
    });
  }
  updateTimes();
  window.setInterval(function () {
    updateTimes();
  }, TICK_MS);

  // -- toasts: dismiss after a while, but never while pointed at or focused ----------
  function setUpToast(toast) {
    var left = 8000;
    var started = Date.now();
    var timer = null;
    var hovered = false;
    var focused = false;
    function close() {
      toast.remove();
    }
    function run() {
      if (timer || hovered || focused) return;
      started = Date.now();
      timer = window.setTimeout(close, left);
      toast.setAttribute("data-paused", "false");
    }
    function pause() {
      if (timer) {
        window.clearTimeout(timer);
        timer = null;
        left = Math.max(1000, left - (Date.now() - started));
      }
      toast.setAttribute("data-paused", "true");
    }
    toast.addEventListener("mouseenter", function () {
      hovered = true;
      pause();
    });
    toast.addEventListener("mouseleave", function () {
      hovered = false;
      run();
    });
    toast.addEventListener("focusin", function () {
      focused = true;
      pause();
    });
    toast.addEventListener("focusout", function () {
      focused = false;
      run();
    });
    var button = toast.querySelector(".toast-close");
    if (button) button.addEventListener("click", close);
    var wait = parseInt(toast.getAttribute("data-timeout") || "", 10);
    if (wait > 0) left = wait;
    run();
  }
  document.querySelectorAll(".toast").forEach(setUpToast);

  // -- tables that scroll sideways say so ----------------------------------------------
  function markScrollers(root) {
    (root || document).querySelectorAll(".table-frame").forEach(function (frame) {
      var wrap = frame.querySelector(".table-wrap");
      if (!wrap) return;
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      frame.classList.toggle("scrolls", scrolls);
      frame.classList.toggle("at-end", wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1);
      if (!wrap.hasAttribute("data-watched")) {
        wrap.setAttribute("data-watched", "");
        wrap.addEventListener("scroll", function () {
          frame.classList.toggle(
            "at-end",
            wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1
          );
        });
      }
    });
  }
  markScrollers();
  window.addEventListener("resize", function () {
    markScrollers();
  });

  // -- log-in: post the form to the login API as JSON, then go back ------------------
  var login = document.getElementById("login-form");
  if (login) {
    login.addEventListener("submit", function (event) {
      event.preventDefault();
      var error = document.getElementById("login-error");
      var button = login.querySelector("button[type=submit]");
      error.hidden = true;
      button.setAttribute("aria-busy", "true");
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
              : "Log-in failed (" + response.status + ").";
          error.hidden = false;
          button.removeAttribute("aria-busy");
        })
        .catch(function () {
          error.textContent = "Cannot reach the server.";
          error.hidden = false;
          button.removeAttribute("aria-busy");
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
      refresh();
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  function anySelected() {
    return document.querySelector(".row-select:checked, .select-all:checked") !== null;
  }

  // -- live throughput chart (overview) ----------------------------------------------
  var chart = document.getElementById("live-chart");
  var seconds = chart ? parseInt(chart.getAttribute("data-seconds"), 10) || 60 : 60;
  var ok = new Array(seconds).fill(0);
  var fail = new Array(seconds).fill(0);
  var totals = { Succeeded: 0, Failed: 0 };

  function text(cls, x, y, anchor, content) {
    var el = document.createElementNS(SVG, "text");
    el.setAttribute("class", cls);
    el.setAttribute("x", x);
    el.setAttribute("y", y);
    if (anchor) el.setAttribute("text-anchor", anchor);
    el.textContent = content;
    return el;
  }
  function drawChart() {
    if (!chart) return;
    var width = 720, height = 160, left = 48, bottom = 20;
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
      chart.appendChild(text("axis", left - 4, y + 4, "end", String(Math.round(top * frac))));
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
    chart.appendChild(text("axis", width - 2, height - 3, "end", "now"));
    chart.appendChild(text("axis", left, height - 3, null, "-" + seconds + "s"));
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

  // -- updating the page in place ----------------------------------------------------
  // The page is fetched again and the live shell (navigation and content) is morphed
  // into the new one node by node: unchanged nodes stay, so focus, scroll, text being
  // typed and opened <details> survive. Rows carry data-key so they move, not mutate.
  function keyOf(node) {
    return node.nodeType === 1 ? node.getAttribute("data-key") : null;
  }
  function sameKind(a, b) {
    return (
      a.nodeType === b.nodeType &&
      a.nodeName === b.nodeName &&
      (a.nodeType !== 1 || (a.id || "") === (b.id || ""))
    );
  }
  function syncAttributes(from, to) {
    var i, name;
    for (i = from.attributes.length - 1; i >= 0; i--) {
      name = from.attributes[i].name;
      if (!to.hasAttribute(name) && name !== "open" && name !== "data-watched") {
        from.removeAttribute(name);
      }
    }
    for (i = 0; i < to.attributes.length; i++) {
      name = to.attributes[i].name;
      if (from.getAttribute(name) !== to.attributes[i].value) {
        from.setAttribute(name, to.attributes[i].value);
      }
    }
  }
  function morph(from, to) {
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    if (from.hasAttribute("data-keep")) return; // drawn here (the live chart)
    syncAttributes(from, to);
    var current = from.firstChild;
    var next = to.firstChild;
    while (next) {
      var after = next.nextSibling;
      var key = keyOf(next);
      var match = null;
      if (key !== null) {
        for (var probe = current; probe; probe = probe.nextSibling) {
          if (keyOf(probe) === key && sameKind(probe, next)) {
            match = probe;
            break;
          }
        }
      } else if (current && keyOf(current) === null && sameKind(current, next)) {
        match = current;
      }
      if (match) {
        if (match !== current) from.insertBefore(match, current);
        morph(match, next);
        current = match.nextSibling;
      } else {
        var fresh = document.importNode(next, true);
        from.insertBefore(fresh, current);
        current = fresh.nextSibling;
      }
      next = after;
    }
    while (current) {
      var gone = current;
      current = current.nextSibling;
      from.removeChild(gone);
    }
  }

  var pending = false;
  var inFlight = false;
  function refresh() {
    var shell = document.querySelector("[data-live-root]");
    if (!shell) return;
    if (anySelected() || inFlight) {
      pending = true; // never drop what someone is selecting; refresh once they are done
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
        var fresh = doc.querySelector("[data-live-root]");
        var live = document.querySelector("[data-live-root]");
        if (!fresh || !live || anySelected()) return;
        var focused = document.activeElement;
        var x = window.scrollX;
        var y = window.scrollY;
        morph(live, fresh);
        updateTimes(live);
        markScrollers(live);
        if (focused && focused !== document.activeElement) {
          if (focused.isConnected) focused.focus({ preventScroll: true });
          else if (focused !== body) document.getElementById("main").focus({ preventScroll: true });
        }
        if (window.scrollX !== x || window.scrollY !== y) window.scrollTo(x, y);
        if (doc.title && doc.title !== document.title) document.title = doc.title;
        body.setAttribute("data-refreshed", String(Date.now()));
        if (pending) refresh();
      })
      .catch(function () {
        inFlight = false;
      });
  }
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
  var refreshSoon = debounce(refresh, 400);
  var refreshNow = debounce(refresh, 60);

  function watched(jobId) {
    var shell = document.querySelector("[data-live-root]");
    var ids = ((shell && shell.getAttribute("data-jobs")) || "").split(" ");
    return ids.indexOf(String(jobId)) !== -1;
  }

  // heartbeats and expiries change nothing the feed reports: resync now and then too
  var every = parseInt(body.getAttribute("data-refresh-every") || "15", 10) * 1000;
  window.setInterval(function () {
    if (!document.hidden) refreshSoon();
  }, every);

  // -- the live feed -----------------------------------------------------------------
  var status = document.getElementById("live-status");
  function setStatus(state, label) {
    if (!status) return;
    status.setAttribute("data-state", state);
    var el = status.querySelector(".live-text");
    if (el) el.textContent = label;
    status.setAttribute("title", label);
  }
  if (status && window.EventSource) {
    var source = new EventSource(base + "/events");
    source.addEventListener("open", function () {
      setStatus("open", "Live");
      // catch up on whatever changed between rendering this page and the stream opening
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
      if (watched(change.job_id)) refreshNow();
      else refreshSoon();
    });
    source.addEventListener("resync", refreshSoon);
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
