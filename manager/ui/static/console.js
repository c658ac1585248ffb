// Nebula console: the live parts of the pages (no framework, no build).
// Loaded from a file: the Content-Security-Policy allows no inline script.
"use strict";

function setWidths(root) {
  root.querySelectorAll("[data-width]").forEach(function (el) {
    el.style.width = el.getAttribute("data-width") + "%";
  });
}

function text(id, value) {
  var el = document.getElementById(id);
  if (el) { el.textContent = String(value); }
}

// showStanding updates a group's page with where its devices stand: the
// counts, the bar and the devices not converged.
function showStanding(st) {
  function pct(n, of) { return of ? (100 * n / of).toFixed(1) : "0"; }
  text("version", st.device_group_id);
  text("devices", st.devices);
  ["converged", "pending", "failed", "silent"].forEach(function (k) {
    text("n-" + k, st.counts[k]);
    var seg = document.querySelector("#bar ." + k);
    if (seg) { seg.style.width = pct(st.counts[k], st.devices) + "%"; }
  });
  text("checked", new Date(st.checked_at).toISOString().substring(11, 19));
  // A rollout's progress: its state, wave and decisions (a page opened
  // before the rollout began shows them at its next load).
  if (st.rollout) {
    text("rollout", st.rollout);
    text("wave", st.wave);
  }
  var decisions = document.getElementById("decisions");
  if (decisions && st.decisions) {
    decisions.textContent = "";
    st.decisions.forEach(function (d) {
      var li = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = d.decision + (d.revert ? "+revert" : "");
      var reason = document.createElement("span");
      reason.className = "muted";
      reason.textContent = d.reason;
      li.appendChild(badge);
      li.appendChild(document.createTextNode(" wave " + (d.wave + 1) + " by " + d.actor + " at " + new Date(d.time).toISOString().substring(11, 19) + " "));
      li.appendChild(reason);
      decisions.appendChild(li);
    });
  }
  var body = document.querySelector("#slowest tbody");
  if (body) {
    body.textContent = "";
    st.slowest.forEach(function (d) {
      var tr = document.createElement("tr");
      [d.device_id, d.hostname, d.status, d.applied_version, d.last_seen.replace("T", " ").substring(0, 19)].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 0) {
          var a = document.createElement("a");
          a.href = "/ui/devices/" + encodeURIComponent(v);
          a.textContent = v;
          td.appendChild(a);
        } else if (i === 2) {
          var b = document.createElement("span");
          b.className = "badge " + v;
          b.textContent = v;
          td.appendChild(b);
        } else {
          td.textContent = String(v);
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
}

// A device group's page follows where its devices stand without a reload:
// a stream of Server-Sent Events (one every few seconds) while it lasts;
// where a browser has none, or the stream is refused, it asks every few
// seconds instead.
function followGroup(group, every) {
  var base = "/ui/groups/" + encodeURIComponent(group);
  if (window.EventSource) {
    var es = new EventSource(base + "/stream");
    es.onmessage = function (e) { showStanding(JSON.parse(e.data)); };
    es.addEventListener("signedout", function () { es.close(); window.location = "/ui/login"; });
    es.addEventListener("gone", function () { es.close(); window.location.reload(); });
    es.onerror = function () {
      // A stream that ends is opened again by the browser; one refused
      // (signed out, forbidden) is closed for good: poll, which says why.
      if (es.readyState === EventSource.CLOSED) { poll(base + "/status", every); }
    };
    return;
  }
  poll(base + "/status", every);
}

function poll(url, every) {
  var next = every;
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location = "/ui/login"; return null; }
        return resp.ok ? resp.json() : null;
      })
      .then(function (st) {
        if (!st) { return; }
        // The manager says when to ask again.
        next = Math.max(every, st.next_ms || 0);
        showStanding(st);
      })
      .catch(function () { /* the next tick tries again */ })
      .finally(function () { setTimeout(tick, next); });
  }
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", function () {
  setWidths(document);
  // Forms that change something serious ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  var group = document.body.getAttribute("data-group");
  if (group) {
    followGroup(group, parseInt(document.body.getAttribute("data-refresh"), 10) || 2000);
  }
});
