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

// A device group's page asks for where its devices stand every few
// seconds and updates the counts, the bar and the slowest devices.
function followGroup(group, every) {
  var url = "/ui/groups/" + encodeURIComponent(group) + "/status";
  var next = every;
  function pct(n, of) { return of ? (100 * n / of).toFixed(1) : "0"; }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location = "/ui/login"; return null; }
        return resp.ok ? resp.json() : null;
      })
      .then(function (st) {
        if (!st) { return; }
        // The manager says when to ask again (longer for large groups).
        next = Math.max(every, st.next_ms || 0);
        text("version", st.device_group_id);
        text("devices", st.devices);
        ["converged", "pending", "failed", "silent"].forEach(function (k) {
          text("n-" + k, st.counts[k]);
          var seg = document.querySelector("#bar ." + k);
          if (seg) { seg.style.width = pct(st.counts[k], st.devices) + "%"; }
        });
        text("checked", new Date(st.checked_at).toISOString().substring(11, 19));
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
